package logevery

import (
	"sync/atomic"
	"time"
)

// Every says yes at most once per period; make one with New. It is safe for concurrent use.
type Every struct {
	period time.Duration
	last   atomic.Int64 // when it last said yes, Unix nanoseconds; 0 before
}

// New is an Every of period.
func New(period time.Duration) *Every { return &Every{period: period} }

// Allow reports whether a line may be logged at now: yes the first time, and then once period
// has passed since the last yes. Of callers that race, one gets yes.
func (e *Every) Allow(now time.Time) bool {
	last := e.last.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < e.period {
		return false
	}
	return e.last.CompareAndSwap(last, now.UnixNano())
}
