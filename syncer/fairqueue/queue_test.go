package fairqueue

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newQueue() *Queue[string] { return openQueue(time.Millisecond, time.Second) }

// openQueue is a queue that serves every tenant without AddTenant, for the tests of the order
// in which it serves them.
func openQueue(baseDelay, maxDelay time.Duration) *Queue[string] {
	q := New[string](baseDelay, maxDelay)
	q.anyTenant = true
	return q
}

// TestHeavyTenantNoUrgentSlot: a heavy tenant at its halved limit of 1 gets no extra slot for an
// urgent item; the item goes first once the tenant's item in processing is done.
func TestHeavyTenantNoUrgentSlot(t *testing.T) {
	q := newQueue()
	q.LimitPerTenant(2)
	addN(q, "heavy", "h", 10)
	drainHeld(t, q, 1) // h0
	addN(q, "light", "l", 5)
	expectHeld(t, q, "light/l0", "light/l1", "light/l2", "light/l3")
	q.AddUrgent("heavy", "new")
	g := newBackgroundGets(t)
	g.start(q)
	g.expectBlocked() // heavy at its limit of 1 with an update, light at its 4
	q.Done("heavy", "h0")
	g.expect("heavy/new")
}

// TestHeavyBesideTrickle: a heavy tenant is held to half the limit only while the light tenant
// beside it has items queued, which the next worker takes: no worker waits while either has
// an item it may take, and the heavy tenant has the whole limit again once the light one's
// queue is empty.
func TestHeavyBesideTrickle(t *testing.T) {
	q := newQueue()
	q.LimitPerTenant(2)
	addN(q, "heavy", "h", 10)
	addN(q, "light", "l", 2)
	expectHeld(t, q, "heavy/h0", "light/l0", "light/l1", "heavy/h1")
	g := newBackgroundGets(t)
	g.start(q)
	g.expectBlocked() // heavy alone at its limit of 2
	q.Add("light", "l2")
	g.expect("light/l2")
}

// drain gets n items, marking each done at once, and returns "tenant/item" in order.
func drain(t *testing.T, q *Queue[string], n int) []string {
	t.Helper()
	return getN(t, q, n, true)
}

// drainHeld gets n items without marking them done and returns "tenant/item" in order.
func drainHeld(t *testing.T, q *Queue[string], n int) []string {
	t.Helper()
	return getN(t, q, n, false)
}

func getN(t *testing.T, q *Queue[string], n int, done bool) []string {
	t.Helper()
	g := newBackgroundGets(t)
	var got []string
	for range n {
		g.start(q)
		k := g.next()
		tenant, item, _ := strings.Cut(k, "/")
		if tenant == "" {
			t.Fatal("queue shut down")
		}
		got = append(got, k)
		if done {
			q.Done(tenant, item)
		}
	}
	return got
}

func TestRoundRobin(t *testing.T) {
	cases := map[string]struct {
		adds [][2]string // tenant, item in order
		want []string
	}{
		"one tenant keeps FIFO order": {
			adds: [][2]string{{"a", "1"}, {"a", "2"}, {"a", "3"}},
			want: []string{"a/1", "a/2", "a/3"},
		},
		"tenants alternate": {
			adds: [][2]string{{"a", "1"}, {"a", "2"}, {"a", "3"}, {"b", "1"}, {"b", "2"}, {"c", "1"}},
			want: []string{"a/1", "b/1", "c/1", "a/2", "b/2", "a/3"},
		},
		"duplicates are queued once": {
			adds: [][2]string{{"a", "1"}, {"a", "1"}, {"b", "1"}, {"a", "1"}},
			want: []string{"a/1", "b/1"},
		},
		"same item in two tenants is two items": {
			adds: [][2]string{{"a", "x"}, {"b", "x"}},
			want: []string{"a/x", "b/x"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q := newQueue()
			for _, a := range tc.adds {
				q.Add(a[0], a[1])
			}
			if diff := cmp.Diff(tc.want, drain(t, q, len(tc.want))); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			for _, tenant := range []string{"a", "b", "c"} {
				if n := q.Len(tenant); n != 0 {
					t.Errorf("Len(%s) = %d after draining", tenant, n)
				}
			}
		})
	}
}

func TestUrgentLane(t *testing.T) {
	type add struct {
		tenant, item string
		urgent       bool
	}
	cases := map[string]struct {
		adds []add
		want []string
	}{
		"urgent items go first, each lane in order": {
			adds: []add{{"a", "s1", false}, {"a", "s2", false}, {"a", "n1", true}, {"a", "n2", true}},
			want: []string{"a/n1", "a/n2", "a/s1", "a/s2"},
		},
		"every fourth item is an update while updates wait": {
			adds: []add{{"a", "s1", false}, {"a", "s2", false}, {"a", "n1", true}, {"a", "n2", true}, {"a", "n3", true}, {"a", "n4", true},
				{"a", "n5", true}, {"a", "n6", true}, {"a", "n7", true}},
			want: []string{"a/n1", "a/n2", "a/n3", "a/s1", "a/n4", "a/n5", "a/n6", "a/s2", "a/n7"},
		},
		"an item queued already keeps its place": {
			adds: []add{{"a", "s1", false}, {"a", "s2", false}, {"a", "s2", true}},
			want: []string{"a/s1", "a/s2"},
		},
		"an urgent item queued already stays urgent": {
			adds: []add{{"a", "s1", false}, {"a", "n1", true}, {"a", "n1", false}},
			want: []string{"a/n1", "a/s1"},
		},
		"tenants still alternate": {
			adds: []add{{"a", "s1", false}, {"a", "s2", false}, {"b", "s1", false}, {"a", "n1", true}},
			want: []string{"a/n1", "b/s1", "a/s1", "a/s2"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q := newQueue()
			for _, a := range tc.adds {
				if a.urgent {
					q.AddUrgent(a.tenant, a.item)
				} else {
					q.Add(a.tenant, a.item)
				}
			}
			if n := q.Len("a") + q.Len("b"); n != len(tc.want) {
				t.Errorf("%d items queued, want %d", n, len(tc.want))
			}
			if diff := cmp.Diff(tc.want, drain(t, q, len(tc.want))); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			if n := q.Len("a") + q.Len("b"); n != 0 {
				t.Errorf("%d items left after draining", n)
			}
		})
	}
}

// TestUrgentAddedWhileProcessing: an item added urgently while it is being processed is queued
// in the urgent lane when it is done.
func TestUrgentAddedWhileProcessing(t *testing.T) {
	q := newQueue()
	q.Add("a", "x")
	k, _ := q.Get()
	q.Add("a", "s1")
	q.AddUrgent("a", "x")
	q.Done(k.Tenant, k.Item)
	if diff := cmp.Diff([]string{"a/x", "a/s1"}, drain(t, q, 2)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestFloodDoesNotStarve: tenant "flood" queues 10,000 keys, then "quiet" queues one. The quiet
// key must come out within two Gets, not after the flood.
func TestFloodDoesNotStarve(t *testing.T) {
	q := newQueue()
	for i := range 10000 {
		q.Add("flood", fmt.Sprint(i))
	}
	drain(t, q, 5) // the flood is being served
	q.Add("quiet", "k")
	got := drain(t, q, 2)
	if got[0] != "quiet/k" && got[1] != "quiet/k" {
		t.Fatalf("quiet tenant's key not served within 2 Gets during a flood: %v", got)
	}
	if n := q.Len("flood"); n != 10000-6 {
		t.Errorf("flood backlog = %d, want %d", n, 10000-6)
	}
}

// TestBusyTenantYields: while the workers hold three slow keys of tenant "flood", a key of
// "quiet" is served before the flood's next keys, though the flood is first in the ring; among
// tenants with as many keys in processing, the ring order stands.
func TestBusyTenantYields(t *testing.T) {
	q := newQueue()
	for i := range 5 {
		q.Add("flood", fmt.Sprint(i))
	}
	for range 3 { // taken by workers, not done
		if k, _ := q.Get(); k.Tenant != "flood" {
			t.Fatalf("got %v, want a flood key", k)
		}
	}
	q.Add("quiet", "a")
	q.Add("quiet", "b")
	var got []string
	for range 4 { // not done either
		k, _ := q.Get()
		got = append(got, k.Tenant+"/"+k.Item)
	}
	// quiet/a (0 keys in processing against the flood's 3), quiet/b (1 against 3), then the
	// flood's, the only keys left.
	if diff := cmp.Diff([]string{"quiet/a", "quiet/b", "flood/3", "flood/4"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// backgroundGets runs Gets in the background and checks what they hand out.
type backgroundGets struct {
	t   *testing.T
	got chan string
}

func newBackgroundGets(t *testing.T) *backgroundGets {
	return &backgroundGets{t: t, got: make(chan string, 1)}
}

// start calls q.Get in the background.
func (g *backgroundGets) start(q *Queue[string]) {
	go func() {
		k, _ := q.Get()
		g.got <- k.Tenant + "/" + k.Item
	}()
}

// expect waits for a Get to hand out want.
func (g *backgroundGets) expect(want string) {
	g.t.Helper()
	if k := g.next(); k != want {
		g.t.Fatalf("Get = %s, want %s", k, want)
	}
}

// next waits for a Get to hand out an item and returns it as "tenant/item".
func (g *backgroundGets) next() string {
	g.t.Helper()
	select {
	case k := <-g.got:
		return k
	case <-time.After(5 * time.Second):
		g.t.Fatal("Get blocked")
	}
	return ""
}

// expectBlocked checks that no Get hands anything out for a while.
func (g *backgroundGets) expectBlocked() {
	g.t.Helper()
	select {
	case k := <-g.got:
		g.t.Fatalf("Get = %s, want it to wait", k)
	case <-time.After(50 * time.Millisecond):
	}
}

// expectInAnyOrder waits for len(want) Gets to hand out want, in whatever order they return.
func (g *backgroundGets) expectInAnyOrder(want ...string) {
	g.t.Helper()
	got := make([]string, len(want))
	for i := range got {
		got[i] = g.next()
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !cmp.Equal(got, want) {
		g.t.Fatalf("Gets = %v, want %v in any order", got, want)
	}
}

// addN queues n items of tenant, named prefix0, prefix1, ….
func addN(q *Queue[string], tenant, prefix string, n int) {
	for i := range n {
		q.Add(tenant, fmt.Sprint(prefix, i))
	}
}

// expectHeld gets len(want) items without marking them done and checks that they are want, in
// order.
func expectHeld(t *testing.T, q *Queue[string], want ...string) {
	t.Helper()
	if got := drainHeld(t, q, len(want)); !cmp.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestLimitPerTenant: with a limit of 2, a third Get finds nothing it may hand out while the
// flood holds two keys, though the flood has more queued; it waits, then serves the quiet
// tenant's key when one comes, and the flood's next key once one of its keys is done.
func TestLimitPerTenant(t *testing.T) {
	q := newQueue()
	q.LimitPerTenant(2)
	for i := range 5 {
		q.Add("flood", fmt.Sprint(i))
	}
	for range 2 { // taken by workers, not done
		if k, _ := q.Get(); k.Tenant != "flood" {
			t.Fatalf("got %v, want a flood key", k)
		}
	}
	g := newBackgroundGets(t)
	g.start(q)
	g.expectBlocked() // the flood is at its limit and nothing else is queued
	q.Add("quiet", "k")
	g.expect("quiet/k")
	g.start(q)
	g.expectBlocked()
	q.Done("flood", "0")
	g.expect("flood/2")
	if n := q.Len("flood"); n != 2 {
		t.Errorf("flood backlog = %d, want 2", n)
	}
}

// TestLightAndHeavyTenants: with a limit of 2, a flood alone has 2 in processing. Once a quiet
// tenant with fewer queued items than the mean comes, the quiet one may have 4 in processing
// and the flood, with more than the mean, 1.
func TestLightAndHeavyTenants(t *testing.T) {
	q := newQueue()
	q.LimitPerTenant(2)
	addN(q, "flood", "f", 10)
	expectHeld(t, q, "flood/f0", "flood/f1")
	g := newBackgroundGets(t)
	g.start(q)
	g.expectBlocked() // alone, the flood keeps to its limit
	addN(q, "quiet", "k", 5)
	g.expect("quiet/k0")
	for i := 1; i < 4; i++ { // over the limit of 2: the quiet tenant has less queued
		g.start(q)
		g.expect(fmt.Sprint("quiet/k", i))
	}
	g.start(q)
	g.expectBlocked() // quiet at twice the limit, the flood over half of it
	q.Done("flood", "f0")
	g.expectBlocked() // the flood at half the limit
	q.Done("flood", "f1")
	g.expect("flood/f2")
}

// TestLimitRisesWhenOthersDrain: a heavy tenant held to half the limit may have the whole limit
// again as soon as the light tenant beside it has nothing queued, and a waiting Get takes its
// next item then, without waiting for one of its items to be done.
func TestLimitRisesWhenOthersDrain(t *testing.T) {
	q := newQueue()
	q.LimitPerTenant(2)
	addN(q, "light", "l", 5)
	addN(q, "heavy", "h", 20)
	expectHeld(t, q, "light/l0", "heavy/h0", "light/l1", "light/l2", "light/l3")
	g := newBackgroundGets(t)
	g.start(q)
	g.start(q)
	g.expectBlocked() // light at 4 in processing, heavy at 1
	q.Done("light", "l0")
	g.expectInAnyOrder("heavy/h1", "light/l4") // heavy, alone now, has the limit of 2 again
}

// TestOwnLimitRises: a Get that leaves its heavy tenant at the mean raises that tenant's own
// limit, and wakes a second waiting Get for the tenant's next item; nothing else would wake it.
func TestOwnLimitRises(t *testing.T) {
	q := newQueue()
	q.LimitPerTenant(2)
	addN(q, "light", "l", 4)
	drainHeld(t, q, 2) // l0, l1: alone, at the limit of 2
	addN(q, "heavy", "h", 4)
	// light, with fewer queued, goes to 4 in processing; heavy to its halved 1
	expectHeld(t, q, "heavy/h0", "light/l2", "light/l3")
	q.Add("light", "l4")
	q.Add("light", "l5")
	g := newBackgroundGets(t)
	g.start(q)
	g.start(q)
	g.expectBlocked() // light at 4 with 2 queued, heavy at 1 with 3
	q.Done("heavy", "h0")
	g.expectInAnyOrder("heavy/h1", "heavy/h2") // heavy, at the mean after h1, has the limit of 2
}

// TestUrgentSlotOverLimit: with a limit of 2 held by two updates, a tenant's urgent item is
// still handed out (a third in processing), but not a second urgent one while the first is in
// processing; once it is done, the next urgent item goes. A tenant whose items in processing are
// urgent gets no extra slot.
func TestUrgentSlotOverLimit(t *testing.T) {
	q := newQueue()
	q.LimitPerTenant(2)
	for i := range 3 {
		q.Add("a", fmt.Sprint("s", i))
	}
	q.Get()
	q.Get() // two updates in processing: at the limit
	g := newBackgroundGets(t)
	q.AddUrgent("a", "n1")
	q.AddUrgent("a", "n2")
	g.start(q)
	g.expect("a/n1") // over the limit: the extra slot
	g.start(q)
	g.expectBlocked() // n1 holds the extra slot
	q.Done("a", "n1")
	g.expect("a/n2")

	b := newQueue()
	b.LimitPerTenant(2)
	for i := range 3 {
		b.AddUrgent("b", fmt.Sprint("n", i))
	}
	b.Get()
	b.Get()
	g.start(b)
	g.expectBlocked() // its two in processing are urgent: no extra slot
	b.Done("b", "n0")
	g.expect("b/n2")
}

// TestConcurrentWorkers: with several workers and producers, every added item is processed,
// and never by two workers at once (run it with -race); with a per-tenant limit too, where the
// tenants' backlogs differ, so their limits change as the items go.
func TestConcurrentWorkers(t *testing.T) {
	for _, limit := range []int{0, 2} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) { concurrentWorkers(t, limit) })
	}
}

func concurrentWorkers(t *testing.T, limit int) {
	q := newQueue()
	q.LimitPerTenant(limit)
	var mu sync.Mutex
	inFlight := map[Key[string]]bool{}
	seen := map[Key[string]]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				k, shutdown := q.Get()
				if shutdown {
					return
				}
				mu.Lock()
				if inFlight[k] {
					t.Errorf("%v processed by two workers at once", k)
				}
				inFlight[k], seen[k] = true, true
				mu.Unlock()
				time.Sleep(time.Microsecond)
				mu.Lock()
				delete(inFlight, k)
				mu.Unlock()
				q.Done(k.Tenant, k.Item)
			}
		})
	}
	var producers sync.WaitGroup
	for tenant, adds := range map[string]int{"a": 2000, "b": 700, "c": 20} {
		producers.Go(func() {
			for i := range adds {
				q.Add(tenant, fmt.Sprint(i%500)) // duplicates while queued and while processed
			}
		})
	}
	producers.Wait()
	const distinct = 500 + 500 + 20
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == distinct {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processed %d distinct items, want %d", n, distinct)
		}
		time.Sleep(time.Millisecond)
	}
	q.ShutDown()
	wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	sum := 0
	for _, s := range q.tenants {
		sum += s.queued()
	}
	if q.queued != sum {
		t.Errorf("queued = %d, but the tenants have %d queued", q.queued, sum)
	}
}

func TestNotConcurrentlyProcessed(t *testing.T) {
	q := newQueue()
	q.Add("a", "1")
	k, _ := q.Get()
	q.Add("a", "1") // while processing: held back until Done
	if n := q.Len("a"); n != 0 {
		t.Fatalf("Len = %d while the item is processed, want 0", n)
	}
	q.Done(k.Tenant, k.Item)
	if n := q.Len("a"); n != 1 {
		t.Fatalf("Len = %d after Done, want 1 (re-queued)", n)
	}
}

func TestRemoveTenant(t *testing.T) {
	q := newQueue()
	q.Add("a", "1")
	q.Add("b", "1")
	q.Add("a", "2")
	q.RemoveTenant("a")
	if diff := cmp.Diff([]string{"b/1"}, drain(t, q, 1)); diff != "" {
		t.Errorf("after RemoveTenant (-want +got):\n%s", diff)
	}
	if n := q.Len("a"); n != 0 {
		t.Errorf("Len(a) = %d", n)
	}
}

func TestShutDownUnblocksGet(t *testing.T) {
	q := newQueue()
	done := make(chan bool)
	go func() { _, shutdown := q.Get(); done <- shutdown }()
	q.ShutDown()
	if !<-done {
		t.Error("Get did not report shutdown")
	}
}

func TestOnWaitReportsTimeQueued(t *testing.T) {
	q := newQueue()
	waits, urgent := map[string]time.Duration{}, map[string]bool{}
	q.OnWait(func(tenant string, u bool, d time.Duration) { waits[tenant], urgent[tenant] = d, u })
	q.Add("a", "x")
	time.Sleep(20 * time.Millisecond)
	q.AddUrgent("b", "y")
	for range 2 {
		k, _ := q.Get()
		q.Done(k.Tenant, k.Item)
	}
	if waits["a"] < 20*time.Millisecond || waits["b"] >= 20*time.Millisecond {
		t.Errorf("waits %v: want a ≥ 20ms (queued before the sleep), b < 20ms", waits)
	}
	if urgent["a"] || !urgent["b"] {
		t.Errorf("urgent %v: want a false (Add), b true (AddUrgent)", urgent)
	}
}

// TestServedTenantsOnly: the queue takes a tenant's items only between AddTenant and
// RemoveTenant, however they come (a patrol or a timer that still held the tenant, a retry),
// and keeps nothing for a tenant removed.
func TestServedTenantsOnly(t *testing.T) {
	q := New[string](time.Hour, time.Hour)
	defer q.ShutDown()
	q.Add("a", "early")
	if n := q.Len("a"); n != 0 {
		t.Fatalf("Len(a) = %d before AddTenant, want 0", n)
	}
	q.AddTenant("a")
	q.Add("a", "x")
	q.AddAfter("a", "later", time.Hour)
	q.AddRateLimited("a", "failed")
	if q.Len("a") != 1 || q.Waiting() != 2 || q.NumRequeues("a", "failed") != 1 {
		t.Fatalf("served: Len %d, Waiting %d, NumRequeues %d; want 1, 2, 1", q.Len("a"), q.Waiting(), q.NumRequeues("a", "failed"))
	}
	q.RemoveTenant("a")
	q.Add("a", "x")
	q.AddUrgent("a", "y")
	q.AddAfter("a", "later", time.Hour)
	q.AddAfter("a", "now", 0)
	q.AddRateLimited("a", "failed")
	if q.Len("a") != 0 || q.Waiting() != 0 || q.NumRequeues("a", "failed") != 0 {
		t.Errorf("removed: Len %d, Waiting %d, NumRequeues %d; want 0, 0, 0", q.Len("a"), q.Waiting(), q.NumRequeues("a", "failed"))
	}
	if got := q.Tenants(); len(got) != 0 {
		t.Errorf("the queue holds state for %v after RemoveTenant, want none", got)
	}
}

// TestRemovedAndAddedAgainNotTwiceAtOnce: a tenant stopped and served again (its kubeconfig
// rotated) while a worker still holds one of its items: the new incarnation's copy of that item
// waits for the old worker's Done, as any item added while it is processed.
func TestRemovedAndAddedAgainNotTwiceAtOnce(t *testing.T) {
	q := New[string](time.Millisecond, time.Second)
	q.AddTenant("t")
	q.Add("t", "pod")
	held, _ := q.Get() // the old incarnation's worker
	q.RemoveTenant("t")
	q.AddTenant("t")
	q.Add("t", "pod") // the new incarnation's patrol
	g := newBackgroundGets(t)
	g.start(q)
	g.expectBlocked()
	q.Done(held.Tenant, held.Item)
	g.expect("t/pod")
	q.Add("t", "pod") // while the new worker holds it
	g.start(q)
	g.expectBlocked()
	q.ShutDown()
	g.next()
	if got := q.Tenants(); len(got) != 1 {
		t.Errorf("Tenants() = %v, want [t]", got)
	}
}

// TestRemovedTenantsHeldItemsFinish: the sub-queue of a removed tenant goes with the Done of
// its last held item.
func TestRemovedTenantsHeldItemsFinish(t *testing.T) {
	q := New[string](time.Millisecond, time.Second)
	defer q.ShutDown()
	q.AddTenant("t")
	q.Add("t", "1")
	q.Add("t", "2")
	k, _ := q.Get()
	q.RemoveTenant("t")
	if got := q.Tenants(); len(got) != 1 {
		t.Fatalf("Tenants() = %v while an item is held, want [t]", got)
	}
	q.Done(k.Tenant, k.Item)
	if got := q.Tenants(); len(got) != 0 {
		t.Errorf("Tenants() = %v after the last Done, want none", got)
	}
}
