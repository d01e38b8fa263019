package fairqueue

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newQueue() *Queue[string] { return New[string](time.Millisecond, time.Second) }

// drain gets n items, marking each done at once, and returns "tenant/item" in order.
func drain(t *testing.T, q *Queue[string], n int) []string {
	t.Helper()
	var got []string
	for range n {
		k, shutdown := q.Get()
		if shutdown {
			t.Fatal("queue shut down")
		}
		got = append(got, k.Tenant+"/"+k.Item)
		q.Done(k.Tenant, k.Item)
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

// TestFairnessUnderConcurrency runs workers while two tenants keep adding; the quiet tenant's
// items must each wait at most a few Gets.
func TestFairnessUnderConcurrency(t *testing.T) {
	q := newQueue()
	for i := range 5000 {
		q.Add("flood", fmt.Sprint(i))
	}
	var mu sync.Mutex
	served := 0
	quietAt := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				k, shutdown := q.Get()
				if shutdown {
					return
				}
				mu.Lock()
				served++
				if k.Tenant == "quiet" {
					quietAt[k.Item] = served
				}
				mu.Unlock()
				q.Done(k.Tenant, k.Item)
			}
		})
	}
	for i := range 20 {
		mu.Lock()
		addedAt := served
		mu.Unlock()
		item := fmt.Sprint(i)
		q.Add("quiet", item)
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			at, ok := quietAt[item]
			mu.Unlock()
			if ok {
				// 4 workers may each have taken a flood item between the add and the serve.
				if at-addedAt > 10 {
					t.Errorf("quiet item %s waited %d Gets", item, at-addedAt)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("quiet item %s never served", item)
			}
			time.Sleep(time.Millisecond)
		}
	}
	q.ShutDown()
	wg.Wait()
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
