package keylimit

import "sync"

// Limit lets each key have at most max things going at once. Make it with New; it is safe
// for concurrent use.
type Limit struct {
	max int
	mu  sync.Mutex
	n   map[string]int // going, by key; a key with none has no entry
}

// New returns a Limit of max per key.
func New(max int) *Limit {
	return &Limit{max: max, n: map[string]int{}}
}

// Max is the most each key may have going.
func (l *Limit) Max() int { return l.max }

// Acquire takes one of key's max; false when all are taken. A true must be matched by one
// Release.
func (l *Limit) Acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		return false
	}
	l.n[key]++
	return true
}

// Release gives back one that Acquire took.
func (l *Limit) Release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key]--; l.n[key] <= 0 {
		delete(l.n, key) // keys of tenants long gone take no memory
	}
}
