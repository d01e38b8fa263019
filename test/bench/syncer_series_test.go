package bench

// The latency and fairness series of BenchmarkSyncer: pods created one at a time (latencySeries)
// or at a steady rate (pacedSeries, floodedSeries beside another tenant's flood), each timed
// from the tenant's Create call to the super pod in a super watch, with what the machine and the
// syncer did meanwhile (measureSeries).

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// sample is one pod of a latency series: t0 just before the tenant Create call, when the call
// returned, when a tenant watch saw the pod (as the syncer's does) and when the super watch
// saw the super pod.
type sample struct {
	t0, created, tenantSeen, seen time.Time
}

// series is a latency series with the circumstances it ran in.
type series struct {
	samples []sample
	cpu     cpuUse
	work    map[string]work // the syncer's for the series' tenant, by kind
	wait    queueWaits      // the series' tenant's keys in the syncer's fair queue
	disk    diskSyncs
	// superRequests and tenantRequests are what the super cluster's apiserver and the series'
	// tenant's served meanwhile.
	superRequests, tenantRequests apiserverCounters
}

// measureSeries runs a latency series in tenant t and records the CPU use, the syncer's work
// for t and the requests the super apiserver and t served meanwhile.
func measureSeries(b *testing.B, super *superCluster, syncer *syncerProcess, t *tenantCluster, run func() []sample) series {
	b.Helper()
	before := syncer.mustScrape(b)
	etcdBefore, etcdErr := scrapeEtcd(b.Context(), super)
	cpu, superReqs, tenantReqs := markCPU(super.dir), scrapeAPIServers(b, super.client), scrapeAPIServers(b, t.client)
	samples := run()
	after := syncer.mustScrape(b)
	s := series{samples: samples, cpu: cpu.since(super.dir), work: syncerWork(before, after, `tenant="`+t.key+`"`), wait: queueWaitOf(before, after, t.key)}
	s.superRequests = scrapeAPIServers(b, super.client).minus(superReqs)
	s.tenantRequests = scrapeAPIServers(b, t.client).minus(tenantReqs)
	if etcdAfter, err := scrapeEtcd(b.Context(), super); err == nil && etcdErr == nil {
		s.disk.wal = histogramOf(etcdBefore, etcdAfter, "etcd_disk_wal_fsync_duration_seconds")
	} else {
		b.Logf("reading etcd's metrics: %v", errors.Join(etcdErr, err))
	}
	return s
}

// queueWait is how long a tenant's keys of one lane of the syncer's fair queue waited there
// during a phase, from the histogram vnest_syncer_queue_wait_seconds.
type queueWait struct {
	lane          string
	keys, seconds float64
	p99           float64 // upper bound of the bucket holding the 99th percentile, seconds
}

// queueWaits are a tenant's queue waits, new objects' lane first.
type queueWaits []queueWait

func queueWaitOf(before, after metricSamples, tenant string) queueWaits {
	var out queueWaits
	for _, lane := range []string{"new", "update"} {
		h := histogramOf(before, after, "vnest_syncer_queue_wait_seconds", `tenant="`+tenant+`"`, `lane="`+lane+`"`)
		out = append(out, queueWait{lane: lane, keys: h.count, seconds: h.sum, p99: h.quantile(0.99)})
	}
	return out
}

func (ws queueWaits) String() string {
	var out []string
	for _, w := range ws {
		if w.keys == 0 {
			out = append(out, fmt.Sprintf("no keys in lane %s", w.lane))
			continue
		}
		out = append(out, fmt.Sprintf("%.0f keys in lane %s mean %.1f ms, p99 ≤ %.1f ms", w.keys, w.lane, 1000*w.seconds/w.keys, 1000*w.p99))
	}
	return "queue wait: " + strings.Join(out, ", ")
}

// latencies are the sorted durations f gives for each sample.
func (s series) latencies(f func(sample) time.Duration) []time.Duration {
	out := make([]time.Duration, len(s.samples))
	for i, x := range s.samples {
		out[i] = f(x)
	}
	slices.Sort(out)
	return out
}

// total is create → super pod watched, the figure of issue 4.
func (s series) total() []time.Duration {
	return s.latencies(func(x sample) time.Duration { return x.seen.Sub(x.t0) })
}

// createCalls are the sorted durations of the series' Create calls.
func (s series) createCalls() []time.Duration {
	return s.latencies(func(x sample) time.Duration { return x.created.Sub(x.t0) })
}

// describe is a readable line on the series: the total and its parts, the tenant's Create
// call, from its return to a tenant watch (the tenant apiserver and etcd), and from there to
// the super watch (the syncer, the super apiserver and its watch).
func (s series) describe() string {
	tot := s.total()
	parts := []struct {
		name     string
		from, to func(sample) time.Time
	}{
		{"Create call", func(x sample) time.Time { return x.t0 }, func(x sample) time.Time { return x.created }},
		{"→ tenant watch", func(x sample) time.Time { return x.created }, func(x sample) time.Time { return x.tenantSeen }},
		{"→ super watch", func(x sample) time.Time { return x.tenantSeen }, func(x sample) time.Time { return x.seen }},
	}
	var out []string
	for _, part := range parts {
		d := s.latencies(func(x sample) time.Duration { return part.to(x).Sub(part.from(x)) })
		out = append(out, fmt.Sprintf("%s p50 %.1f p99 %.1f", part.name, ms(percentile(d, 0.5)), ms(percentile(d, 0.99))))
	}
	return fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms (%s); %s",
		ms(percentile(tot, 0.5)), ms(percentile(tot, 0.99)), ms(tot[len(tot)-1]), strings.Join(out, "; "), s.slowest(3))
}

// slowest says when in the series its n slowest samples were created, seconds after the
// first create, slowest first: a tail that gathers at the start is the previous phase's work.
func (s series) slowest(n int) string {
	if len(s.samples) == 0 {
		return "no samples"
	}
	idx := make([]int, len(s.samples))
	for i := range idx {
		idx[i] = i
	}
	total := func(i int) time.Duration { return s.samples[i].seen.Sub(s.samples[i].t0) }
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(total(b), total(a)) })
	start, end := s.samples[0].t0, s.samples[len(s.samples)-1].t0
	var out []string
	for _, i := range idx[:min(n, len(idx))] {
		out = append(out, fmt.Sprintf("%.1f ms at %.1f s", ms(total(i)), s.samples[i].t0.Sub(start).Seconds()))
	}
	return fmt.Sprintf("slowest %s of %.1f s", strings.Join(out, ", "), end.Sub(start).Seconds())
}

// pacing is when a latency series creates its next pod.
type pacing int

const (
	// afterRunning: once the previous pod is Running where it was created (its binding,
	// token and status writes done) and latencyGap has passed. Nothing of the previous pod
	// is in flight then: the unloaded figure, which the goal is about.
	afterRunning pacing = iota
	// afterSuperPod: latencyGap after the previous super pod appeared, while the rest of the
	// previous pod's work (about as much CPU as the gap) may still run; the only series until
	// 2026-12-06 (session 29).
	afterSuperPod
)

// String says how a series is paced, as the report prints it.
func (p pacing) String() string {
	if p == afterSuperPod {
		return fmt.Sprintf("each %v after the previous super pod, while the rest of its work runs", latencyGap)
	}
	return fmt.Sprintf("each once the previous pod is Running and %v more (unloaded)", latencyGap)
}

// latencySeries creates latencyPods pods named prefix-NNNN in namespace ns of cs one after
// another, each once the previous one's super pod (in superNS) exists and then as next says.
// tenantPods watches cs for a tenant; nil on the direct path, where cs is the super cluster.
func latencySeries(b *testing.B, prefix string, cs kubernetes.Interface, ns, superNS string, tenantPods, superPods *podTracker, next pacing) []sample {
	b.Helper()
	ctx := b.Context()
	var out []sample
	for _, name := range podNames(prefix, latencyPods) {
		var x sample
		x.t0 = time.Now()
		if err := createPod(ctx, cs, ns, name, "latency"); err != nil {
			b.Fatalf("creating pod %s: %v", name, err)
		}
		x.created = time.Now()
		err := superPods.await(ctx, time.Minute, "super pod "+superNS+"/"+name, func() (bool, string) {
			_, ok := superPods.seen(superNS, name)
			return ok, "not seen"
		})
		if err != nil {
			b.Fatal(err)
		}
		x.seen, _ = superPods.seen(superNS, name)
		x.tenantSeen = x.seen // the direct path has no tenant: its create is the super pod
		if tenantPods != nil {
			x.tenantSeen = tenantPods.mustSee(b, ns, name)
		}
		out = append(out, x)
		if next == afterRunning {
			created, cns := superPods, superNS
			if tenantPods != nil {
				created, cns = tenantPods, ns
			}
			err = created.await(ctx, time.Minute, "pod "+cns+"/"+name+" Running", func() (bool, string) {
				_, _, running, _ := created.counts(cns, []string{name})
				return running == 1, "not Running"
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(latencyGap)
	}
	return out
}

// pacedSeries creates quietPods pods in tenant t, one every quietInterval whatever the
// previous create took, and returns once every super pod exists.
func pacedSeries(b *testing.B, t *tenantCluster, superPods *podTracker, label string) []sample {
	b.Helper()
	ctx := b.Context()
	superNS := mapping.SuperNamespace(t.key, benchNamespace)
	names := podNames("quiet-"+label, quietPods)
	out := make([]sample, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	tick := time.NewTicker(quietInterval)
	defer tick.Stop()
	for i, name := range names {
		if i > 0 {
			<-tick.C
		}
		wg.Go(func() {
			out[i].t0 = time.Now()
			errs[i] = createPod(ctx, t.client, benchNamespace, name, "quiet-"+label)
			out[i].created = time.Now()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	err := superPods.await(ctx, phaseTimeout, fmt.Sprintf("%d quiet super pods", len(names)), func() (bool, string) {
		_, seen, _, _ := superPods.counts(superNS, names)
		return seen == len(names), fmt.Sprintf("%d seen", seen)
	})
	if err != nil {
		b.Fatal(err)
	}
	for i, name := range names {
		out[i].seen, _ = superPods.seen(superNS, name)
		out[i].tenantSeen = t.pods.mustSee(b, benchNamespace, name)
	}
	return out
}

// flood is what the noisy tenant did while the quiet series ran.
type flood struct {
	createsIn   time.Duration // first create until all floodPods were created in the tenant
	inSuperIn   time.Duration // first create until the super cluster had all of them
	atQuietEnd  int           // flood pods in the super cluster when the quiet series' last super pod appeared
	createdAtQ0 int           // flood pods created when the quiet series started
	window      cpuUse        // the CPU time used from the quiet series' first create to its last super pod
	// windowRequests is what the super cluster's apiserver served in that window.
	windowRequests apiserverCounters
	quiet, noisy   string // the two tenants' cluster keys
}

// floodedSeries starts the noisy tenant's flood, runs the quiet series once a tenth of the
// flood is created, and waits for the whole flood to reach the super cluster. The quiet
// series' window is measured in the CPU time of the super cluster's processes and the requests
// its apiserver served.
func floodedSeries(b *testing.B, super *superCluster, quiet, noisy *tenantCluster, superPods *podTracker) ([]sample, flood) {
	b.Helper()
	ctx := b.Context()
	names := podNames("flood", floodPods)
	var created atomic.Int64
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := range floodWorkers {
		wg.Go(func() {
			for i := w; i < len(names); i += floodWorkers {
				if err := createPod(ctx, noisy.client, benchNamespace, names[i], "flood"); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				created.Add(1)
			}
		})
	}
	floodDone := make(chan struct{})
	go func() { wg.Wait(); close(floodDone) }()
	for created.Load() < floodPods/10 {
		select {
		case <-floodDone: // it failed early; the error is reported below
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	f := flood{quiet: quiet.key, noisy: noisy.key}
	f.createdAtQ0 = int(created.Load())
	window, superReqs := markCPU(super.dir), scrapeAPIServers(b, super.client)
	latencies := pacedSeries(b, quiet, superPods, "flooded")
	f.window = window.since(super.dir)
	f.windowRequests = scrapeAPIServers(b, super.client).minus(superReqs)
	noisyNS := mapping.SuperNamespace(noisy.key, benchNamespace)
	_, f.atQuietEnd, _, _ = superPods.counts(noisyNS, names)
	<-floodDone
	f.createsIn = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	err := superPods.await(ctx, phaseTimeout, fmt.Sprintf("%d flood super pods", floodPods), func() (bool, string) {
		_, seen, _, _ := superPods.counts(noisyNS, names)
		return seen == floodPods, fmt.Sprintf("%d seen", seen)
	})
	if err != nil {
		b.Fatal(err)
	}
	f.inSuperIn = time.Since(start)
	progress("flood: %d pods created in %v, all in the super cluster after %v", floodPods, f.createsIn.Round(time.Millisecond), f.inSuperIn.Round(time.Millisecond))
	return latencies, f
}
