package apiserver

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/exepages"
)

// The Go runtime settings are process-wide. Run applies them and restores
// the previous values when it returns, so an in-process caller (a test) gets
// its process back as it was. The environment (GOGC, GOMEMLIMIT) wins over
// the flags, as it would for any Go program.

// setMemoryLimits applies the start-up memory limit (--start-memory-limit,
// or a lower --memory-limit); ready switches to --memory-limit (when unset:
// the limit the process had, normally none) once the control plane is ready,
// restore puts back the limit the process had.
func (c *completedConfig) setMemoryLimits(logger klog.Logger) (ready, restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}, func() {}
	}
	prev := debug.SetMemoryLimit(-1)
	steady := prev
	if c.memoryLimit > 0 {
		steady = c.memoryLimit
	}
	start := startupLimit(c.startMemoryLimit, steady)
	debug.SetMemoryLimit(start)
	logger.V(1).Info("Set Go memory limit for start-up", "bytes", start)
	// Only a start-up limit of vnest's own follows the live heap; ready stops the follower, or
	// restore when start-up failed.
	stopFollowing := func() {}
	if start != steady {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(startLimitPoll)
			defer tick.Stop()
			followLiveHeap(start, steady, stop, tick.C)
		}()
		stopFollowing = sync.OnceFunc(func() { close(stop); <-done })
	}
	ready = func() {
		stopFollowing()
		debug.SetMemoryLimit(steady)
		logger.V(1).Info("Set Go memory limit", "bytes", steady)
	}
	return ready, func() { stopFollowing(); debug.SetMemoryLimit(prev) }
}

// startLimitPoll is how often start-up reads the live heap.
const startLimitPoll = 20 * time.Millisecond

// followLiveHeap raises the start-up memory limit, from limit, whenever the live heap (as of the
// last GC) comes within a third of it, to half again the live heap, never above ceiling (the
// limit once ready): a start-up with much data (a tenant restarted with thousands of objects)
// gets room instead of running the GC back to back, and an empty one keeps the limit. It
// returns when stop is closed.
func followLiveHeap(limit, ceiling int64, stop <-chan struct{}, tick <-chan time.Time) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for {
		select {
		case <-stop:
			return
		case <-tick:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if want := min(raisedLimit(limit, int64(sample[0].Value.Uint64())), ceiling); want > limit {
			limit = want
			debug.SetMemoryLimit(limit)
		}
	}
}

// raisedLimit is the start-up limit for a live heap of live bytes: limit while live is under
// two thirds of it, else 1.5 × live.
func raisedLimit(limit, live int64) int64 {
	if live*3 < limit*2 {
		return limit
	}
	return live * 3 / 2
}

// startupLimit is the memory limit until ready: start (0: none) unless the
// steady limit is lower.
func startupLimit(start, steady int64) int64 {
	if start <= 0 || steady < start {
		return steady
	}
	return start
}

// tightenGC applies --gc-percent once the control plane is ready and hands
// the memory start-up no longer needs back to the OS. Start-up runs at Go's
// default GC target: it allocates a lot (API routes, OpenAPI specs) and a
// tight target there costs seconds of start-up for nothing, since the peak
// is short. Unless --busy-gc-percent equals --gc-percent, a gcTuner then
// raises the target while the process is busy. The returned func stops the
// tuner and restores the old target.
func (c *completedConfig) tightenGC(logger klog.Logger) (restore func()) {
	if os.Getenv("GOGC") != "" {
		c.releaseExecutablePages(logger)
		return func() {}
	}
	prev := debug.SetGCPercent(c.opts.GCPercent)
	debug.FreeOSMemory()
	c.releaseExecutablePages(logger)
	logger.V(1).Info("Set Go GC target", "percent", c.opts.GCPercent)
	if c.opts.BusyGCPercent == c.opts.GCPercent {
		return func() { debug.SetGCPercent(prev) }
	}
	tuner := newGCTuner(c.opts.GCPercent, c.opts.BusyGCPercent)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tuner.run(logger, stop, func() { c.releaseExecutablePages(logger) })
	}()
	return func() {
		close(stop)
		<-done
		debug.SetGCPercent(prev)
	}
}

// gcTuner switches the GC target between two values by how fast the process
// allocates. An idle tenant allocates ~0.3 MiB/s (BenchmarkIdleControlPlane,
// MiB/s-idle-alloc) and the idle target (25) keeps its heap small; a busy one
// allocates far more, and at 25 the GC then takes a quarter of its CPU
// (BenchmarkSyncer prints that share). So the target goes up to busy as soon
// as one second allocates more than busyRate, and back down to idle, with the
// freed memory returned to the OS, once calm has passed without such a second.
//
// While idle, the memory a GC cycle of the runtime frees is returned to the OS
// at once, not over the next half minute or so by the runtime's background
// scavenger, which keeps a tenth of the heap goal besides: an idle tenant's
// RSS then follows its heap. It costs a second GC cycle for each of the
// runtime's, about one a minute when idle, and at most one every
// releaseEvery: a tenant whose heap sits at its memory limit, where the
// runtime collects often, pays no more than that. Only in a quiet second, one
// that allocated at most quietRate: a tenant serving a trickle of requests,
// under busyRate, is not idle, and its requests would share the one core with
// the second cycle. A cycle seen in a busier second (the allocation that
// started it, often) waits for the next quiet one.
type gcTuner struct {
	idle, busy int
	busyRate   float64 // bytes per second
	calm       time.Duration
	// releaseEvery is the least time between two returns of freed memory.
	releaseEvery time.Duration
	quietRate    float64 // bytes per second

	isBusy      bool
	lastBusy    time.Time
	lastRelease time.Time
	freed       bool // an idle GC cycle of the runtime freed memory not returned yet
}

const (
	gcTunerInterval = time.Second
	gcBusyRate      = 4 << 20 // bytes/s: over ten times an idle tenant's
	gcCalm          = 30 * time.Second
	gcReleaseEvery  = 10 * time.Second
	gcQuietRate     = 1 << 20 // bytes/s: about four times an idle tenant's
)

func newGCTuner(idle, busy int) *gcTuner {
	return &gcTuner{idle: idle, busy: busy, busyRate: gcBusyRate, calm: gcCalm, releaseEvery: gcReleaseEvery, quietRate: gcQuietRate}
}

// observe takes the bytes allocated and the GC cycles the runtime completed
// during the interval that ended at now, and says which GC target to set (0:
// leave it) and whether to return freed memory to the OS. It only decides; run
// applies.
func (g *gcTuner) observe(allocated, cycles uint64, interval time.Duration, now time.Time) (percent int, release bool) {
	if float64(allocated) > g.busyRate*interval.Seconds() {
		g.lastBusy = now
		if !g.isBusy {
			g.isBusy = true
			return g.busy, false
		}
		return 0, false
	}
	if g.isBusy {
		if now.Sub(g.lastBusy) < g.calm {
			return 0, false
		}
		g.isBusy, g.freed, g.lastRelease = false, false, now
		return g.idle, true
	}
	g.freed = g.freed || cycles > 0
	quiet := float64(allocated) <= g.quietRate*interval.Seconds()
	if g.freed && quiet && now.Sub(g.lastRelease) >= g.releaseEvery {
		g.freed, g.lastRelease = false, now
		return 0, true
	}
	return 0, false
}

// run samples the process's allocation and GC cycles every gcTunerInterval
// until stop is closed; idle runs after the freed memory is returned on the
// way back to idle.
func (g *gcTuner) run(logger klog.Logger, stop <-chan struct{}, idle func()) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/automatic:gc-cycles"}}
	value := func(s metrics.Sample) uint64 {
		if s.Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s.Value.Uint64()
	}
	read := func() (allocated, cycles uint64) {
		metrics.Read(samples)
		return value(samples[0]), value(samples[1])
	}
	lastAllocated, lastCycles := read()
	lastAt := time.Now()
	tick := time.NewTicker(gcTunerInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			allocated, cycles := read()
			percent, release := g.observe(allocated-lastAllocated, cycles-lastCycles, now.Sub(lastAt), now)
			lastAllocated, lastCycles, lastAt = allocated, cycles, now
			if percent != 0 {
				debug.SetGCPercent(percent)
				logger.V(2).Info("Set Go GC target", "percent", percent, "busy", g.isBusy)
			}
			if release {
				// A forced cycle: the runtime's own count, cycles, does not see it.
				debug.FreeOSMemory()
				if percent != 0 {
					idle()
				}
			}
		}
	}
}

// limitProcs lowers GOMAXPROCS to --ready-max-procs once the control plane
// is ready, unless the GOMAXPROCS environment variable set it. Start-up runs
// with the runtime's value: its work is parallel (1.6 s more to ready on one
// core). Once ready, one tenant's burst of requests then leaves the other
// cores to the rest of the host. BenchmarkSyncer, 2 cores and 10 tenants: a
// quiet tenant's p99 under another tenant's flood was 391–484 ms with 1
// against 521–885 ms with 2, at the same throughput; the flood's own creates
// took 15.6 s instead of 13.8 (medians). Requests back to back cost the tenant
// 30–40% less CPU (BenchmarkRequestCPU), and an idle one 1.4–1.7% of a core
// instead of 1.9–2.0% (docs/benchmarks.md, session 25).
func (c *completedConfig) limitProcs(logger klog.Logger) {
	n := c.opts.ReadyMaxProcs
	if n == 0 || os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) <= n {
		return
	}
	prev := runtime.GOMAXPROCS(n)
	logger.V(1).Info("Lowered GOMAXPROCS", "from", prev, "to", n)
}

// releaseExecutablePages unmaps the pages of the executable that the process
// no longer uses (--release-executable-pages, package exepages).
func (c *completedConfig) releaseExecutablePages(logger klog.Logger) {
	if !c.opts.ReleaseExecutablePages {
		return
	}
	released, err := exepages.Release()
	if err != nil {
		logger.Error(err, "Releasing the executable's pages")
		return
	}
	logger.V(1).Info("Released the executable's pages", "bytes", released)
}

func parseMemoryLimit(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("invalid %s %q: want a quantity like 120Mi, or 0", flag, s)
	}
	return q.Value(), nil
}
