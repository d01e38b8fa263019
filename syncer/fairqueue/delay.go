package fairqueue

import (
	"container/heap"
	"sync"
	"time"
)

// waiting holds the items of AddAfter and AddRateLimited until they are due, as client-go's
// delaying queue does: one heap ordered by due time, at most one entry per (tenant, item), and
// one timer set for the earliest. An item added again while it waits keeps the earlier of its
// two due times. The syncer queues a pod again for its next token renewal on every sync of
// the pod; with a timer per call, a pod that every patrol synced held one more timer a minute
// until its renewal, about fifty per pod by then.
type waiting[T comparable] struct {
	mu      sync.Mutex
	byKey   map[Key[T]]*waiter[T]
	due     waitHeap[T]
	timer   *time.Timer // runs fire; nil until the first item
	stopped bool
	ready   func(Key[T]) // queues an item that is due
}

type waiter[T comparable] struct {
	key   Key[T]
	at    time.Time
	index int // in the heap
}

func newWaiting[T comparable](ready func(Key[T])) *waiting[T] {
	return &waiting[T]{byKey: map[Key[T]]*waiter[T]{}, ready: ready}
}

// add has k queued at at, or earlier if it already waits for an earlier time.
func (w *waiting[T]) add(k Key[T], at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	e, ok := w.byKey[k]
	switch {
	case !ok:
		e = &waiter[T]{key: k, at: at}
		w.byKey[k] = e
		heap.Push(&w.due, e)
	case at.Before(e.at):
		e.at = at
		heap.Fix(&w.due, e.index)
	default:
		return
	}
	if w.due[0] == e { // the new earliest
		w.arm()
	}
}

// arm sets the timer for the earliest item; w.mu is held and the heap is not empty.
func (w *waiting[T]) arm() {
	d := time.Until(w.due[0].at)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
		return
	}
	w.timer.Reset(d)
}

// fire queues the items that are due and sets the timer for the next.
func (w *waiting[T]) fire() {
	w.mu.Lock()
	now := time.Now()
	var due []Key[T]
	for len(w.due) > 0 && !w.due[0].at.After(now) {
		e := heap.Pop(&w.due).(*waiter[T])
		delete(w.byKey, e.key)
		due = append(due, e.key)
	}
	if len(w.due) > 0 && !w.stopped {
		w.arm()
	}
	w.mu.Unlock()
	for _, k := range due {
		w.ready(k)
	}
}

// len is the number of items waiting.
func (w *waiting[T]) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.due)
}

// removeTenant drops the items of tenant.
func (w *waiting[T]) removeTenant(tenant string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.due[:0]
	for _, e := range w.due {
		if e.key.Tenant == tenant {
			delete(w.byKey, e.key)
			continue
		}
		kept = append(kept, e)
	}
	clear(w.due[len(kept):])
	w.due = kept
	for i, e := range w.due {
		e.index = i
	}
	heap.Init(&w.due)
}

func (w *waiting[T]) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// waitHeap is a container/heap of waiters, earliest first.
type waitHeap[T comparable] []*waiter[T]

func (h waitHeap[T]) Len() int           { return len(h) }
func (h waitHeap[T]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h waitHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *waitHeap[T]) Push(x any) {
	e := x.(*waiter[T])
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *waitHeap[T]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
