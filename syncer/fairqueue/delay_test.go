package fairqueue

import (
	"testing"
	"time"
)

// An item added again while it waits is one item waiting, due at the earliest of its times: a
// pod queued for its token renewal by every sync holds one wait, not one per sync.
func TestAddAfterKeepsOneWaitPerItem(t *testing.T) {
	q := newQueue()
	defer q.ShutDown()
	for i := range 50 { // every patrol's sync of the pod queues its renewal again
		q.AddAfter("a", "pod", time.Hour+time.Duration(i)*time.Second)
	}
	if n := q.Waiting(); n != 1 {
		t.Fatalf("after 50 AddAfter of one item, %d wait; want 1", n)
	}
	q.AddAfter("a", "pod", 30*time.Millisecond) // sooner: moves the wait
	q.AddAfter("b", "pod", 10*time.Millisecond) // another tenant's item of the same name
	q.AddAfter("a", "later", time.Hour)
	q.AddAfter("a", "now", 0) // queued at once
	if n := q.Waiting(); n != 3 {
		t.Fatalf("%d wait; want 3 (a/pod, b/pod, a/later)", n)
	}
	if got := drain(t, q, 1); got[0] != "a/now" {
		t.Fatalf("first Get = %s, want a/now (no delay)", got[0])
	}
	start := time.Now()
	got := drain(t, q, 2)
	if got[0] != "b/pod" || got[1] != "a/pod" {
		t.Fatalf("Gets = %v, want [b/pod a/pod] (due after 10 and 30 ms)", got)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("a/pod came after %v; its sooner time was 30 ms", waited)
	}
	if n := q.Waiting(); n != 1 {
		t.Fatalf("%d wait after a/pod was queued; want 1 (a/later): its later times went with it", n)
	}
	g := newBackgroundGets(t)
	g.start(q)
	g.expectBlocked() // a/later is an hour away; a/pod's later times are not queued
	q.ShutDown()
	if k := g.next(); k != "/" {
		t.Fatalf("Get after ShutDown = %s, want nothing", k)
	}
}

// AddRateLimited goes through the same waits: a failing item backs off, and one retry is
// queued however often it failed meanwhile.
func TestAddRateLimitedWaits(t *testing.T) {
	q := openQueue(20*time.Millisecond, time.Second)
	defer q.ShutDown()
	q.AddRateLimited("a", "x") // 20 ms
	q.AddRateLimited("a", "x") // 40 ms: the 20 ms wait stays
	if n := q.Waiting(); n != 1 {
		t.Fatalf("%d wait; want 1", n)
	}
	g := newBackgroundGets(t)
	g.start(q)
	g.expect("a/x")
	q.Done("a", "x")
	g.start(q)
	g.expectBlocked() // the second AddRateLimited's retry was the same wait
	q.ShutDown()
	g.next()
}

// A tenant no longer served leaves nothing waiting: its items would come back as keys of a
// tenant the syncer has forgotten.
func TestRemoveTenantDropsItsWaits(t *testing.T) {
	q := newQueue()
	defer q.ShutDown()
	for _, item := range []string{"x", "y", "z"} {
		q.AddAfter("gone", item, 20*time.Millisecond)
	}
	q.AddAfter("kept", "x", 30*time.Millisecond)
	q.AddAfter("gone", "w", time.Hour)
	q.RemoveTenant("gone")
	if n := q.Waiting(); n != 1 {
		t.Fatalf("%d wait after RemoveTenant; want 1 (kept/x)", n)
	}
	if got := drain(t, q, 1); got[0] != "kept/x" {
		t.Fatalf("Get = %s, want kept/x", got[0])
	}
	g := newBackgroundGets(t)
	g.start(q)
	g.expectBlocked()
	q.ShutDown()
	g.next()
}
