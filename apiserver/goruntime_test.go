package apiserver

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// TestGCTunerObserve: the target goes up in the first busy second and back down (with memory
// released) only after a whole calm period without one; while idle, a GC cycle of the runtime
// has its freed memory returned.
func TestGCTunerObserve(t *testing.T) {
	const MiB = 1 << 20
	type step struct {
		at        time.Duration // since the start
		allocated uint64        // in the second before at
		cycles    uint64        // GC cycles of the runtime in that second
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
		"a GC cycle while idle returns the memory it freed": {
			{at: 1 * time.Second, allocated: 1 * MiB, cycles: 1, release: true},
			{at: 2 * time.Second, allocated: 1 * MiB},
			{at: 60 * time.Second, allocated: 1 * MiB, cycles: 1, release: true},
		},
		"not in a second that allocated more than 1 MiB: in the next quiet one": {
			{at: 1 * time.Second, allocated: 2 * MiB, cycles: 1},
			{at: 2 * time.Second, allocated: 3 * MiB},
			{at: 3 * time.Second, allocated: 1 * MiB, release: true},
			{at: 20 * time.Second, allocated: 0},
		},
		"at most once every 10 s": {
			{at: 1 * time.Second, allocated: 1 * MiB, cycles: 1, release: true},
			{at: 2 * time.Second, allocated: 1 * MiB, cycles: 1},
			{at: 10 * time.Second, allocated: 1 * MiB},
			{at: 11 * time.Second, allocated: 1 * MiB, release: true},
		},
		"cycles while busy are not carried over": {
			{at: 1 * time.Second, allocated: 20 * MiB, cycles: 3, percent: 100},
			{at: 31 * time.Second, allocated: 0, percent: 25, release: true},
			{at: 45 * time.Second, allocated: 0},
		},
		"not while busy": {
			{at: 1 * time.Second, allocated: 20 * MiB, cycles: 1, percent: 100},
			{at: 2 * time.Second, allocated: 1 * MiB, cycles: 2},
			{at: 31 * time.Second, allocated: 1 * MiB, cycles: 1, percent: 25, release: true},
			{at: 32 * time.Second, allocated: 1 * MiB, cycles: 1},
			{at: 41 * time.Second, allocated: 1 * MiB, cycles: 1, release: true},
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
				percent, release := g.observe(s.allocated, s.cycles, time.Second, start.Add(s.at))
				if percent != s.percent || release != s.release {
					t.Fatalf("at %v with %d MiB and %d GC cycles: got target %d release %v, want %d %v", s.at, s.allocated/MiB, s.cycles, percent, release, s.percent, s.release)
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

func TestRaisedLimit(t *testing.T) {
	const MiB = 1 << 20
	for _, tc := range []struct{ limit, live, want int64 }{
		{100 * MiB, 40 * MiB, 100 * MiB}, // an empty tenant's start-up: the limit stays
		{100 * MiB, 66 * MiB, 100 * MiB},
		{100 * MiB, 67 * MiB, 100 * MiB * 3 / 2 * 67 / 100}, // within a third: 1.5 × live
		{150 * MiB, 120 * MiB, 180 * MiB},
	} {
		if got := raisedLimit(tc.limit, tc.live); got != tc.want {
			t.Errorf("raisedLimit(%d MiB, %d MiB) = %d, want %d", tc.limit/MiB, tc.live/MiB, got, tc.want)
		}
	}
}

// TestFollowLiveHeap: a start-up limit under this test process's live heap is raised to half
// again the live heap at the next tick.
func TestFollowLiveHeap(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	runtime.GC() // a live heap figure as of now
	const tiny = 1 << 20
	debug.SetMemoryLimit(tiny)
	stop, tick, done := make(chan struct{}), make(chan time.Time), make(chan struct{})
	go func() { followLiveHeap(tiny, math.MaxInt64, stop, tick); close(done) }()
	tick <- time.Now()
	tick <- time.Now() // the first tick's work is done once the second is taken
	close(stop)
	<-done
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	live := int64(sample[0].Value.Uint64())
	if got := debug.SetMemoryLimit(-1); got < live || got > 2*live {
		t.Errorf("limit after a tick: %d bytes, want about 1.5 × the live heap (%d bytes)", got, live)
	}

	// Never above the limit the process will have once ready (--memory-limit).
	debug.SetMemoryLimit(tiny)
	stop, done = make(chan struct{}), make(chan struct{})
	go func() { followLiveHeap(tiny, 2*tiny, stop, tick); close(done) }()
	tick <- time.Now()
	tick <- time.Now()
	close(stop)
	<-done
	if got := debug.SetMemoryLimit(-1); got != 2*tiny {
		t.Errorf("limit after a tick with a ceiling of %d bytes: %d bytes", 2*tiny, got)
	}
}

// TestLimitProcs: once ready GOMAXPROCS goes down to --ready-max-procs, never up, and not at
// all with 0 or when the GOMAXPROCS environment variable set it.
func TestLimitProcs(t *testing.T) {
	start := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(start) })
	for _, tc := range []struct {
		name        string
		procs, flag int
		env         string
		want        int
	}{
		{"lowered", 4, 1, "", 1},
		{"never raised", 2, 3, "", 2},
		{"0 leaves the runtime's", 4, 0, "", 4},
		{"the environment wins", 4, 1, "4", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			runtime.GOMAXPROCS(tc.procs)
			c := &completedConfig{opts: Options{ReadyMaxProcs: tc.flag}}
			c.limitProcs(klog.Background())
			if got := runtime.GOMAXPROCS(0); got != tc.want {
				t.Errorf("GOMAXPROCS %d, --ready-max-procs %d, env %q: %d after ready, want %d", tc.procs, tc.flag, tc.env, got, tc.want)
			}
		})
	}
}
