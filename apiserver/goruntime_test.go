package apiserver

import (
	"math"
	"testing"
	"time"
)

// TestGCTunerObserve: the target goes up in the first busy second and back down (with memory
// released) only after a whole calm period without one.
func TestGCTunerObserve(t *testing.T) {
	const MiB = 1 << 20
	type step struct {
		at        time.Duration // since the start
		allocated uint64        // in the second before at
		percent   int           // 0: leave the target
		release   bool
	}
	cases := map[string][]step{
		"idle stays idle": {
			{at: 1 * time.Second, allocated: 1 * MiB},
			{at: 2 * time.Second, allocated: 0},
			{at: 40 * time.Second, allocated: 3 * MiB},
		},
		"a busy second raises the target once": {
			{at: 1 * time.Second, allocated: 5 * MiB, percent: 100},
			{at: 2 * time.Second, allocated: 50 * MiB},
			{at: 3 * time.Second, allocated: 50 * MiB},
		},
		"back to idle after the calm period, with memory released": {
			{at: 1 * time.Second, allocated: 20 * MiB, percent: 100},
			{at: 2 * time.Second, allocated: 1 * MiB},
			{at: 30 * time.Second, allocated: 1 * MiB},
			{at: 31 * time.Second, allocated: 1 * MiB, percent: 25, release: true},
			{at: 32 * time.Second, allocated: 1 * MiB},
		},
		"a busy second during the calm period starts it again": {
			{at: 1 * time.Second, allocated: 20 * MiB, percent: 100},
			{at: 20 * time.Second, allocated: 20 * MiB},
			{at: 31 * time.Second, allocated: 0},
			{at: 50 * time.Second, allocated: 0, percent: 25, release: true},
			{at: 51 * time.Second, allocated: 20 * MiB, percent: 100},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			g := newGCTuner(25, 100)
			start := time.Unix(1_000_000, 0)
			for _, s := range steps {
				percent, release := g.observe(s.allocated, time.Second, start.Add(s.at))
				if percent != s.percent || release != s.release {
					t.Fatalf("at %v with %d MiB: got target %d release %v, want %d %v", s.at, s.allocated/MiB, percent, release, s.percent, s.release)
				}
			}
		})
	}
}

// TestStartupLimit: the start-up limit applies unless the steady one is lower.
func TestStartupLimit(t *testing.T) {
	const MiB = 1 << 20
	const none = math.MaxInt64
	cases := []struct {
		name          string
		start, steady int64
		want          int64
	}{
		{"start-up limit, no steady limit", 150 * MiB, none, 150 * MiB},
		{"start-up limit below the steady one", 150 * MiB, 400 * MiB, 150 * MiB},
		{"a lower steady limit wins", 150 * MiB, 100 * MiB, 100 * MiB},
		{"no start-up limit", 0, none, none},
		{"no start-up limit, steady limit", 0, 400 * MiB, 400 * MiB},
	}
	for _, c := range cases {
		if got := startupLimit(c.start, c.steady); got != c.want {
			t.Errorf("%s: startupLimit(%d, %d) = %d, want %d", c.name, c.start, c.steady, got, c.want)
		}
	}
}
