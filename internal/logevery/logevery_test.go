package logevery

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	e := New(time.Minute)
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{
		{0, true},
		{time.Second, false},
		{time.Minute - time.Nanosecond, false},
		{time.Minute, true},
		{time.Minute + 30*time.Second, false},
		{3 * time.Minute, true},
	} {
		if got := e.Allow(start.Add(tc.after)); got != tc.want {
			t.Errorf("Allow at +%v = %v, want %v", tc.after, got, tc.want)
		}
	}
}

// TestAllowOnceUnderRace: of many callers at one moment, one logs.
func TestAllowOnceUnderRace(t *testing.T) {
	e := New(time.Minute)
	now := time.Now()
	var yes atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if e.Allow(now) {
				yes.Add(1)
			}
		})
	}
	wg.Wait()
	if n := yes.Load(); n != 1 {
		t.Errorf("%d of 64 concurrent callers were allowed, want 1", n)
	}
}
