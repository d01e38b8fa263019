package fairqueue

import (
	"math"
	"sync"
	"time"
)

// backoff is AddRateLimited's per-item exponential back-off: base·2ⁿ after n failures, at most
// max, as client-go's ItemExponentialFailureRateLimiter. It counts failures per tenant so that
// RemoveTenant drops a removed tenant's counts with its items: with client-go's limiter, a key
// that failed and then lost its wait to RemoveTenant never came back to be forgotten, and its
// count stayed for the life of the process.
type backoff[T comparable] struct {
	mu        sync.Mutex
	base, max time.Duration
	failures  map[string]map[T]int
}

func newBackoff[T comparable](base, max time.Duration) *backoff[T] {
	return &backoff[T]{base: base, max: max, failures: map[string]map[T]int{}}
}

// when counts a failure of item and returns how long it waits.
func (b *backoff[T]) when(tenant string, item T) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.failures[tenant]
	if m == nil {
		m = map[T]int{}
		b.failures[tenant] = m
	}
	n := m[item]
	m[item] = n + 1
	d := float64(b.base) * math.Pow(2, float64(n))
	if d > float64(b.max) {
		return b.max
	}
	return time.Duration(d)
}

func (b *backoff[T]) forget(tenant string, item T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := b.failures[tenant]; m != nil {
		delete(m, item)
		if len(m) == 0 {
			delete(b.failures, tenant)
		}
	}
}

func (b *backoff[T]) numRequeues(tenant string, item T) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures[tenant][item]
}

func (b *backoff[T]) removeTenant(tenant string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.failures, tenant)
}

// tenants is how many tenants have failure counts.
func (b *backoff[T]) tenants() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.failures)
}
