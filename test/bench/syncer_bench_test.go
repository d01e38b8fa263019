package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Sizes and pacing of BenchmarkSyncer (issue 4).
const (
	benchTenants  = 10
	podsPerTenant = 100
	// createWorkers is how many creates run at once per tenant (or per super namespace on the
	// direct path): 100 in flight in both phases of the throughput comparison.
	createWorkers = 10
	// simNodes × 250 pods per simulated node (internal/supercluster/simnode.go) leaves room
	// for the flood, the quiet series and the latency series at once.
	simNodes = 12

	latencyPods = 200
	latencyGap  = 50 * time.Millisecond

	quietPods     = 100
	quietInterval = 100 * time.Millisecond // 10 pods/s
	floodPods     = 2000
	floodWorkers  = 20

	benchNamespace = "bench"
	phaseLabel     = "vnest-bench-phase"
	podImage       = "vnest.local/busybox:1"
	settleTime     = 10 * time.Second
	phaseTimeout   = 10 * time.Minute
)

// Goals of issue 4.
const (
	goalThroughputRatio = 1.10
	goalLatencyP99      = 20 * time.Millisecond
	goalKBPerPod        = 20.0
	goalFairnessRatio   = 1.5
)

// BenchmarkSyncer measures, in one run on a local super cluster with simulated nodes and ten
// local tenants, with `vnest syncer` as a child process:
//
//  1. throughput: 1,000 pods (100 in each tenant, created concurrently) from the first create
//     until the tenants see all of them Running, ÷ the same 1,000 pods created directly in 10
//     super namespaces with the same concurrency, until Running;
//  2. latency from a tenant create to the super pod's appearance in a super-cluster watch,
//     for pods created one at a time (p50, p99), each once the previous one is Running (the
//     unloaded figure), then again each soon after the previous super pod (the previous pod's
//     binding, status and token writes still running); and, for reference, the same series
//     created directly in a super namespace (create → super watch: what the super cluster
//     alone gives);
//  3. the syncer's memory per synced pod: (with 1,000 pods synced − with the 10 tenants and no
//     pod) ÷ 1,000, as live heap after a GC, heap in use and VmRSS;
//  4. fairness: a quiet tenant's create→super p99 (100 pods at 10/s) while another tenant
//     floods 2,000 pods, ÷ the same series alone.
//
// It runs once whatever b.N (use -benchtime 1x) and reports figures and goals; it fails only
// when something does not work, never on a missed goal.
func BenchmarkSyncer(b *testing.B) {
	bin := vnestBinary(b)
	super := startSuper(b, bin, simNodes)
	tenants := createTenants(b, super, "bench", benchTenants)
	superPods := trackPods(b, super.client)
	syncer := startSyncer(b, bin, super)
	waitSyncing(b, super, tenants)
	progress("the syncer serves all %d tenants", len(tenants))
	tenantSets, directSets := prepareNamespaces(b, super, tenants, superPods)
	var r results

	progress("direct path: %d pods in %d super namespaces", benchTenants*podsPerTenant, len(directSets))
	r.direct = measureThroughput(b, super, syncer, tenants, superPods, "direct", directSets)
	deleteAndWait(b, "direct", directSets, superPods)

	time.Sleep(settleTime)
	r.memBefore = syncer.readMemory(b)
	progress("syncer with %d tenants and no pods: live heap %.1f MiB, VmRSS %.1f MiB", benchTenants, r.memBefore.heapLive/(1<<20), r.memBefore.vmRSS/(1<<20))
	progress("through the syncer: %d pods in %d tenants", benchTenants*podsPerTenant, len(tenantSets))
	r.tenant = measureThroughput(b, super, syncer, tenants, superPods, "tenant", tenantSets)
	time.Sleep(settleTime)
	r.memAfter = syncer.readMemory(b)
	progress("syncer with %d pods synced: live heap %.1f MiB, VmRSS %.1f MiB", benchTenants*podsPerTenant, r.memAfter.heapLive/(1<<20), r.memAfter.vmRSS/(1<<20))
	deleteAndWait(b, "tenant", tenantSets, superPods)

	for _, l := range []struct {
		next           pacing
		prefix         string
		tenant, direct *series
	}{
		{afterRunning, "lat", &r.latency, &r.directLatency},
		{afterSuperPod, "blat", &r.busyLatency, &r.directBusyLatency},
	} {
		progress("latency: %d pods one at a time in tenant %s, %s", latencyPods, tenants[0].name, l.next)
		*l.tenant = measureSeries(b, super, syncer, tenants[0], func() []sample {
			return latencySeries(b, l.prefix, tenants[0].client, benchNamespace, mapping.SuperNamespace(tenants[0].key, benchNamespace), tenants[0].pods, superPods, l.next)
		})
		progress("latency, direct path: %d pods one at a time in super namespace %s, %s", latencyPods, directSets[0].ns, l.next)
		*l.direct = measureSeries(b, super, syncer, tenants[0], func() []sample {
			return latencySeries(b, "d"+l.prefix, directSets[0].client, directSets[0].ns, directSets[0].ns, nil, superPods, l.next)
		})
	}

	quiet, noisy := tenants[1], tenants[2]
	progress("fairness: quiet tenant %s alone, %d pods at %v intervals", quiet.name, quietPods, quietInterval)
	r.quietAlone = measureSeries(b, super, syncer, quiet, func() []sample { return pacedSeries(b, quiet, superPods, "alone") })
	progress("fairness: quiet tenant %s again while %s floods %d pods", quiet.name, noisy.name, floodPods)
	r.quietFlooded = measureSeries(b, super, syncer, quiet, func() []sample {
		var samples []sample
		samples, r.flood = floodedSeries(b, super, quiet, noisy, superPods)
		return samples
	})

	r.report(b)
}

// podSet is the pods one phase creates in one namespace of one cluster: where they are
// created, the tracker that sees them there, and the super namespace their super pods are in
// (the same namespace on the direct path).
type podSet struct {
	client  kubernetes.Interface
	ns      string
	names   []string
	tracker *podTracker
	superNS string
}

// prepareNamespaces creates namespace bench in every tenant and namespaces direct-0…9 in the
// super cluster, and waits until all of them (and the tenants' super namespaces) have their
// default ServiceAccount, without which pod admission refuses pods: no phase measures that.
func prepareNamespaces(b *testing.B, super *superCluster, tenants []*tenantCluster, superPods *podTracker) (tenantSets, directSets []podSet) {
	b.Helper()
	type nsIn struct {
		cs kubernetes.Interface
		ns string
	}
	var ready []nsIn
	for i, t := range tenants {
		createNamespace(b, t.client, benchNamespace)
		superNS := mapping.SuperNamespace(t.key, benchNamespace)
		ready = append(ready, nsIn{t.client, benchNamespace}, nsIn{super.client, superNS})
		t.pods = trackPods(b, t.client)
		tenantSets = append(tenantSets, podSet{client: t.client, ns: benchNamespace, names: podNames(fmt.Sprintf("tp-%d", i), podsPerTenant),
			tracker: t.pods, superNS: superNS})
	}
	for i := range tenants {
		ns := fmt.Sprintf("direct-%d", i)
		createNamespace(b, super.client, ns)
		ready = append(ready, nsIn{super.client, ns})
		// A clientset of its own per namespace, as each tenant has: the same client
		// concurrency on both paths.
		directSets = append(directSets, podSet{client: newClientset(b, super.config), ns: ns, names: podNames(fmt.Sprintf("dp-%d", i), podsPerTenant),
			tracker: superPods, superNS: ns})
	}
	for _, r := range ready {
		err := pollUntil(b.Context(), 3*time.Minute, func(ctx context.Context) error {
			_, err := r.cs.CoreV1().ServiceAccounts(r.ns).Get(ctx, "default", metav1.GetOptions{})
			return err
		})
		if err != nil {
			b.Fatalf("waiting for ServiceAccount %s/default: %v", r.ns, err)
		}
	}
	return tenantSets, directSets
}

func createNamespace(b *testing.B, cs kubernetes.Interface, name string) {
	b.Helper()
	_, err := cs.CoreV1().Namespaces().Create(b.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatalf("creating namespace %s: %v", name, err)
	}
}

func podNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return names
}

// benchPod is the pod every phase creates: one container, no requests; on simulated nodes it
// goes Running without running anything.
func benchPod(name, phase string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{phaseLabel: phase}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "main", Image: podImage, Command: []string{"sleep", "3600"}}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
}

func createPod(ctx context.Context, cs kubernetes.Interface, ns, name, phase string) error {
	return retryTransient(ctx, func() error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(name, phase), metav1.CreateOptions{})
		return err
	})
}

// throughput is the outcome of one throughput phase.
type throughput struct {
	pods      int
	createsIn time.Duration // first create until the last create call returned
	allIn     time.Duration // first create until every pod was seen Running
	cpu       cpuUse
	work      map[string]work // the syncer's, by kind
	// superRequests and tenantRequests are what the super cluster's apiserver and the
	// tenants' served (to every client) during the phase.
	superRequests, tenantRequests apiserverCounters
	timeline                      string // when the pods reached each stage (timelineOf)
}

// timelineOf says when the sets' pods reached each stage, as quantiles of the time since
// start: created (first seen), on a node and Running in the super cluster, and for pods
// created in tenants bound and Running there. It shows which stage a phase waited for: the
// super scheduler binds at most about 50 pods a second (its client's default QPS), on both
// paths.
func timelineOf(sets []podSet, superPods *podTracker, start time.Time) string {
	var super [3][]time.Duration       // created, on a node, Running
	var bound, running []time.Duration // in the tenants
	for _, set := range sets {
		s, n, r := superPods.milestones(set.superNS, set.names, start)
		super[0], super[1], super[2] = append(super[0], s...), append(super[1], n...), append(super[2], r...)
		if set.tracker != superPods {
			_, n, r := set.tracker.milestones(set.ns, set.names, start)
			bound, running = append(bound, n...), append(running, r...)
		}
	}
	q := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "none"
		}
		slices.Sort(ds)
		return fmt.Sprintf("%.1f / %.1f / %.1f", percentile(ds, 0.5).Seconds(), percentile(ds, 0.9).Seconds(), ds[len(ds)-1].Seconds())
	}
	out := fmt.Sprintf("super pod created %s, on a node %s, Running %s", q(super[0]), q(super[1]), q(super[2]))
	if len(running) > 0 {
		out += fmt.Sprintf("; tenant pod bound %s, Running %s", q(bound), q(running))
	}
	return out
}

// measureThroughput creates every set's pods at once (createWorkers per set) and waits until
// each set's tracker has seen all of them Running.
func measureThroughput(b *testing.B, super *superCluster, syncer *syncerProcess, tenants []*tenantCluster, superPods *podTracker, phase string, sets []podSet) throughput {
	b.Helper()
	ctx := b.Context()
	metricsBefore := syncer.mustScrape(b)
	superReqs, tenantReqs := scrapeAPIServers(b, super.client), scrapeAPIServers(b, clientsOf(tenants)...)
	cpu := markCPU(super.dir)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	start := time.Now()
	for _, set := range sets {
		for w := range createWorkers {
			wg.Go(func() {
				for i := w; i < len(set.names); i += createWorkers {
					if err := createPod(ctx, set.client, set.ns, set.names[i], phase); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("creating pod %s/%s: %w", set.ns, set.names[i], err))
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	out := throughput{createsIn: time.Since(start)}
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	var last time.Time
	for _, set := range sets {
		err := set.tracker.await(ctx, phaseTimeout, fmt.Sprintf("%d pods Running in %s", len(set.names), set.ns), func() (bool, string) {
			_, seen, running, _ := set.tracker.counts(set.ns, set.names)
			return running == len(set.names), fmt.Sprintf("%d seen, %d Running", seen, running)
		})
		if err != nil {
			b.Fatal(err)
		}
		_, _, _, setLast := set.tracker.counts(set.ns, set.names)
		if setLast.After(last) {
			last = setLast
		}
		out.pods += len(set.names)
	}
	out.allIn = last.Sub(start)
	out.cpu = cpu.since(super.dir)
	out.timeline = timelineOf(sets, superPods, start)
	metricsAfter := syncer.mustScrape(b)
	out.work = syncerWork(metricsBefore, metricsAfter)
	out.superRequests = scrapeAPIServers(b, super.client).minus(superReqs)
	out.tenantRequests = scrapeAPIServers(b, clientsOf(tenants)...).minus(tenantReqs)
	progress("%s: %d pods created in %v, all Running after %v", phase, out.pods, out.createsIn.Round(time.Millisecond), out.allIn.Round(time.Millisecond))
	return out
}

// deleteAndWait deletes the phase's pods at once and waits until they are gone from where they
// were created and from the super cluster.
func deleteAndWait(b *testing.B, phase string, sets []podSet, superPods *podTracker) {
	b.Helper()
	ctx := b.Context()
	start := time.Now()
	for _, set := range sets {
		err := set.client.CoreV1().Pods(set.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)},
			metav1.ListOptions{LabelSelector: phaseLabel + "=" + phase})
		if err != nil {
			b.Fatalf("deleting the %s pods in %s: %v", phase, set.ns, err)
		}
	}
	for _, set := range sets {
		for _, where := range []struct {
			tracker *podTracker
			ns      string
		}{{set.tracker, set.ns}, {superPods, set.superNS}} {
			err := where.tracker.await(ctx, phaseTimeout, "the "+phase+" pods in "+where.ns+" to go", func() (bool, string) {
				present, _, _, _ := where.tracker.counts(where.ns, set.names)
				return present == 0, fmt.Sprintf("%d left", present)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	progress("%s pods deleted and gone after %v", phase, time.Since(start).Round(time.Millisecond))
}

// work is what the syncer did for one kind during a phase, from its metrics.
type work struct {
	reconciles, seconds, errors float64
}

// syncerWork is the syncer's reconciles, their time and their errors per kind between two
// scrapes, for the series that have every one of labels.
func syncerWork(before, after metricSamples, labels ...string) map[string]work {
	out := map[string]work{}
	for series := range after {
		name, rest, ok := strings.Cut(series, "{")
		if !ok || name != "vnest_syncer_sync_duration_seconds_count" {
			continue
		}
		kind := label(rest, "kind")
		if _, done := out[kind]; done {
			continue
		}
		l := append([]string{`kind="` + kind + `"`}, labels...)
		delta := func(metric string) float64 { return after.sum(metric, l...) - before.sum(metric, l...) }
		if w := (work{delta("vnest_syncer_sync_duration_seconds_count"), delta("vnest_syncer_sync_duration_seconds_sum"), delta("vnest_syncer_sync_errors_total")}); w.reconciles > 0 {
			out[kind] = w
		}
	}
	return out
}

// workLine lists the kinds the syncer reconciled, with count, mean time and errors.
func workLine(w map[string]work) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s %.0f× mean %.1f ms (%.0f errors)", k, w[k].reconciles, 1000*w[k].seconds/w[k].reconciles, w[k].errors))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// results are the figures of one BenchmarkSyncer run.
type results struct {
	direct, tenant         throughput
	memBefore, memAfter    memory
	latency, directLatency series // paced afterRunning
	// busyLatency and directBusyLatency are the same series paced afterSuperPod.
	busyLatency, directBusyLatency series
	quietAlone, quietFlooded       series
	flood                          flood
}

// report publishes the figures as benchmark metrics and prints a readable summary (on
// stdout: a benchmark's log is cut at ten lines).
func (r *results) report(b *testing.B) {
	b.Helper()
	ratio := r.tenant.allIn.Seconds() / r.direct.allIn.Seconds()
	pods := float64(r.tenant.pods)
	perPod := func(f func(memory) float64) float64 { return (f(r.memAfter) - f(r.memBefore)) / pods / 1024 }
	liveKB := perPod(func(m memory) float64 { return m.heapLive })
	nextGCKB := perPod(func(m memory) float64 { return m.heapLiveNextGC })
	inuseKB := perPod(func(m memory) float64 { return m.heapInuse })
	rssKB := perPod(func(m memory) float64 { return m.vmRSS })
	lat, directLat, busyLat := r.latency.total(), r.directLatency.total(), r.busyLatency.total()
	aloneP99, floodedP99 := percentile(r.quietAlone.total(), 0.99), percentile(r.quietFlooded.total(), 0.99)
	fairness := float64(floodedP99) / float64(aloneP99)

	b.ReportMetric(ratio, "x-throughput-ratio")
	b.ReportMetric(r.direct.allIn.Seconds(), "s-direct-1000")
	b.ReportMetric(r.tenant.allIn.Seconds(), "s-tenants-1000")
	b.ReportMetric(ms(percentile(lat, 0.5)), "ms-latency-p50")
	b.ReportMetric(ms(percentile(lat, 0.99)), "ms-latency-p99")
	b.ReportMetric(ms(percentile(directLat, 0.5)), "ms-direct-latency-p50")
	b.ReportMetric(ms(percentile(directLat, 0.99)), "ms-direct-latency-p99")
	b.ReportMetric(ms(percentile(busyLat, 0.99)), "ms-busy-latency-p99")
	b.ReportMetric(liveKB, "KB/pod-heap-live")
	b.ReportMetric(nextGCKB, "KB/pod-heap-live-next-gc")
	b.ReportMetric(inuseKB, "KB/pod-heap-inuse")
	b.ReportMetric(rssKB, "KB/pod-rss")
	b.ReportMetric(ms(aloneP99), "ms-quiet-p99-alone")
	b.ReportMetric(ms(floodedP99), "ms-quiet-p99-flooded")
	b.ReportMetric(fairness, "x-fairness-ratio")

	// A series during which the disk stalled measured the disk, and a phase during which the
	// VM's host took the CPUs away measured the host: the figures they give do not count as a
	// pass (the verdict says why).
	disturbed := func(ss ...series) []string {
		var out []string
		for _, s := range ss {
			if d := s.disk.stall(); d > 0 {
				out = append(out, fmt.Sprintf("an etcd WAL fsync took up to %.0f ms during a series", 1000*d))
			}
			out = append(out, s.cpu.hostBusy())
		}
		return out
	}
	var s strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	p("=== Syncer benchmark: %d tenants, %d simulated nodes, syncer flags %q, tenant CPU limit %q", benchTenants, simNodes, syncerFlags(), tenantCPULimit())
	p("1. Throughput, %d pods, first create → all Running: direct %.1f s, through the syncer %.1f s: ratio %.2f× (goal ≤ %.2f×: %s)",
		r.tenant.pods, r.direct.allIn.Seconds(), r.tenant.allIn.Seconds(), ratio, goalThroughputRatio, judge(ratio <= goalThroughputRatio, r.direct.cpu.hostBusy(), r.tenant.cpu.hostBusy()))
	p("   CPU bound: %s", cpuBound(r.direct, r.tenant, runtime.NumCPU()))
	for _, ph := range []struct {
		name string
		t    throughput
	}{{"direct", r.direct}, {"tenant", r.tenant}} {
		p("   %s: creates done after %.1f s; %s", ph.name, ph.t.createsIn.Seconds(), ph.t.cpu)
		p("   %s: timeline, seconds after the first create (50%% / 90%% / last pod): %s", ph.name, ph.t.timeline)
		p("   %s: syncer work %s", ph.name, workLine(ph.t.work))
		p("   %s: requests served by the super apiserver %s; by the tenants' %s", ph.name, ph.t.superRequests, ph.t.tenantRequests)
	}
	for i, l := range []struct {
		how            pacing
		tenant, direct series
	}{
		{afterRunning, r.latency, r.directLatency},
		{afterSuperPod, r.busyLatency, r.directBusyLatency},
	} {
		tl, dl, dc := l.tenant.total(), l.direct.total(), l.direct.createCalls()
		if i == 0 {
			p("2. Tenant create → super pod in a super watch, %d pods one at a time, %s: %s (goal p99 ≤ %v: %s)",
				len(tl), l.how, l.tenant.describe(), goalLatencyP99, judge(percentile(tl, 0.99) <= goalLatencyP99, disturbed(l.tenant)...))
		} else {
			p("   the same, %s (not the goal's figure): %s", l.how, l.tenant.describe())
		}
		p("   syncer work for the tenant: %s; %s; %s", workLine(l.tenant.work), l.tenant.wait, l.tenant.cpu)
		p("   the super cluster's disk meanwhile: %s; requests served by the super apiserver %s; by the tenant's %s", l.tenant.disk, l.tenant.superRequests, l.tenant.tenantRequests)
		p("   reference, the same series created directly in a super namespace (create → super watch): p50 %.1f ms, p99 %.1f ms, max %.1f ms (Create call p50 %.1f p99 %.1f); %s",
			ms(percentile(dl, 0.5)), ms(percentile(dl, 0.99)), ms(dl[len(dl)-1]),
			ms(percentile(dc, 0.5)), ms(percentile(dc, 0.99)), l.direct.cpu)
		p("   through the syncer ÷ direct: p50 %.2f×, p99 %.2f×", float64(percentile(tl, 0.5))/float64(percentile(dl, 0.5)), float64(percentile(tl, 0.99))/float64(percentile(dl, 0.99)))
	}
	p("3. Syncer memory, %d tenants and no pods → %d pods synced:", benchTenants, r.tenant.pods)
	p("   live heap after a forced GC (reported) %.1f → %.1f MiB = %.1f KB/pod (goal ≤ %.0f KB: %s)",
		r.memBefore.heapLive/(1<<20), r.memAfter.heapLive/(1<<20), liveKB, goalKBPerPod, judge(liveKB <= goalKBPerPod))
	p("   live heap after the syncer's own next GC (%.1f s and %.1f s later; what it allocated meanwhile counts) %.1f → %.1f MiB = %.1f KB/pod",
		r.memBefore.settling, r.memAfter.settling, r.memBefore.heapLiveNextGC/(1<<20), r.memAfter.heapLiveNextGC/(1<<20), nextGCKB)
	p("   heap in use %.1f → %.1f MiB = %.1f KB/pod; VmRSS %.1f → %.1f MiB = %.1f KB/pod; RssAnon %.1f → %.1f MiB",
		r.memBefore.heapInuse/(1<<20), r.memAfter.heapInuse/(1<<20), inuseKB, r.memBefore.vmRSS/(1<<20), r.memAfter.vmRSS/(1<<20), rssKB,
		r.memBefore.rssAnon/(1<<20), r.memAfter.rssAnon/(1<<20))
	p("4. Fairness, quiet tenant %d pods at %v intervals, create → super pod: p99 flooded ÷ alone = %.2f× (goal ≤ %.1f×: %s)",
		quietPods, quietInterval, fairness, goalFairnessRatio, judge(fairness <= goalFairnessRatio, disturbed(r.quietAlone, r.quietFlooded)...))
	for _, ph := range []struct {
		name string
		s    series
	}{{"alone", r.quietAlone}, {"flooded", r.quietFlooded}} {
		p("   %s: %s", ph.name, ph.s.describe())
		p("   %s: syncer work for the quiet tenant %s; %s; %s; %s (quiet, flooding, idle)", ph.name, workLine(ph.s.work), ph.s.wait, ph.s.cpu, ph.s.cpu.tenantsOf(r.flood.quiet, r.flood.noisy))
		p("   %s: the super cluster's disk meanwhile: %s; requests served by the super apiserver %s; by the quiet tenant's %s", ph.name, ph.s.disk, ph.s.superRequests, ph.s.tenantRequests)
	}
	p("   flood of %d pods: %d created when the quiet series began, %d in the super cluster when it ended; all created after %.1f s, all in the super cluster after %.1f s",
		floodPods, r.flood.createdAtQ0, r.flood.atQuietEnd, r.flood.createsIn.Seconds(), r.flood.inSuperIn.Seconds())
	w := r.flood.window
	p("   the quiet series' window under the flood: %s; %s (quiet, flooding, idle); requests served by the super apiserver %s",
		w, w.tenantsOf(r.flood.quiet, r.flood.noisy), r.flood.windowRequests)
	fmt.Print(s.String())
}

// cpuBound says what the tenant phase's CPU time allows on cores cores: the work cannot
// take less than its CPU time ÷ cores, so the ratio cannot be lower than that ÷ the direct
// phase's time; and how much CPU time fits in the goal's time.
func cpuBound(direct, tenant throughput, cores int) string {
	least := tenant.cpu.total() / float64(cores)
	goal := goalThroughputRatio * direct.allIn.Seconds()
	return fmt.Sprintf("the tenant phase's %.1f CPU-s take at least %.1f s on %d cores, a ratio of at least %.2f×; the goal's %.1f s hold at most %.1f CPU-s (the direct phase used %.1f)",
		tenant.cpu.total(), least, cores, least/direct.allIn.Seconds(), goal, goal*float64(cores), direct.cpu.total())
}

func syncerFlags() string { return strings.Join(strings.Fields(os.Getenv(syncerArgsEnv)), " ") }
