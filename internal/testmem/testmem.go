package testmem

import (
	"runtime"
	"time"
)

// Usage is what the process holds: its live heap after forced collections, the goroutine stacks
// in use (not part of the heap) and the goroutines; or, from Sub, what was added between two
// readings.
type Usage struct {
	Heap, Stack int64
	Goroutines  int
}

// Read reads Usage now. The two collections make the heap the live one: the second frees what a
// finalizer kept alive through the first.
func Read() Usage {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Usage{Heap: int64(m.HeapAlloc), Stack: int64(m.StackInuse), Goroutines: runtime.NumGoroutine()}
}

// Sub is what u holds beyond before.
func (u Usage) Sub(before Usage) Usage {
	return Usage{Heap: u.Heap - before.Heap, Stack: u.Stack - before.Stack, Goroutines: u.Goroutines - before.Goroutines}
}

// WaitGoroutines waits until the process has at most n goroutines, for up to timeout, and
// reports whether it got there: goroutines of connections closed a moment ago end on their own
// time, and would count in the next reading and end during it.
func WaitGoroutines(n int, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); runtime.NumGoroutine() > n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
