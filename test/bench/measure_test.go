package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// What the benchmark measures besides time: the syncer's metrics, the apiservers' request
// counters, the syncer's memory and the CPU time of every process of the run.

// metricSamples are the samples of one /metrics scrape: `name{labels}` → value.
type metricSamples map[string]float64

// scrape reads the syncer's /metrics (Prometheus text format).
func (p *syncerProcess) scrape(ctx context.Context) (metricSamples, error) {
	body, err := httpGet(ctx, p.metricsURL+"/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(body)
}

// parseMetrics reads the samples of a Prometheus text-format body.
func parseMetrics(body []byte) (metricSamples, error) {
	out := metricSamples{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// histogramDelta is what a Prometheus histogram (name_bucket/_count/_sum) of the series whose
// labels contain every one of labels gained between two scrapes.
type histogramDelta struct {
	count, sum float64
	bounds     []float64 // bucket upper bounds, ascending
	cumulative []float64 // observations ≤ each bound
}

func histogramOf(before, after metricSamples, name string, labels ...string) histogramDelta {
	h := histogramDelta{count: after.sum(name+"_count", labels...) - before.sum(name+"_count", labels...),
		sum: after.sum(name+"_sum", labels...) - before.sum(name+"_sum", labels...)}
	for series := range after {
		if metric, rest, _ := strings.Cut(series, "{"); metric == name+"_bucket" && !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(rest, l) }) {
			if le, err := strconv.ParseFloat(label(rest, "le"), 64); err == nil && !slices.Contains(h.bounds, le) {
				h.bounds = append(h.bounds, le)
			}
		}
	}
	slices.Sort(h.bounds)
	for _, le := range h.bounds {
		bl := fmt.Sprintf(`le="%s"`, strconv.FormatFloat(le, 'g', -1, 64))
		l := append(slices.Clone(labels), bl)
		h.cumulative = append(h.cumulative, after.sum(name+"_bucket", l...)-before.sum(name+"_bucket", l...))
	}
	return h
}

// quantile is the upper bound of the bucket that holds the q-quantile (0 when empty).
func (h histogramDelta) quantile(q float64) float64 {
	for i, c := range h.cumulative {
		if h.count > 0 && c >= q*h.count {
			return h.bounds[i]
		}
	}
	return 0
}

// scrapeEtcd reads the /metrics of the super cluster's etcd (embedded in `vnest up`, client
// port superPort+1).
func scrapeEtcd(ctx context.Context, super *superCluster) (metricSamples, error) {
	body, err := httpGetWith(ctx, super.etcd, fmt.Sprintf("https://127.0.0.1:%d/metrics", superPort+1))
	if err != nil {
		return nil, err
	}
	return parseMetrics(body)
}

// diskSyncs is how long the etcd of the super cluster (which the tenants share) waited for its
// disk during a phase: every write waits for a WAL fsync, so a slow disk shows in every write's
// latency, on the direct path as on the tenant path.
type diskSyncs struct{ wal histogramDelta }

// diskStall is the fsync time from which a series measured the disk rather than vnest: more
// than five times the goal for create → super pod.
const diskStall = 0.1

// stall is the upper bound of the slowest fsync's bucket when it is over diskStall, else 0.
func (d diskSyncs) stall() float64 {
	if slowest := d.wal.quantile(1); slowest > diskStall {
		return slowest
	}
	return 0
}

func (d diskSyncs) String() string {
	if d.wal.count == 0 {
		return "etcd WAL fsyncs: none read"
	}
	slow := d.wal.count
	if i := slices.Index(d.wal.bounds, 0.008); i >= 0 {
		slow -= d.wal.cumulative[i]
	}
	return fmt.Sprintf("etcd WAL fsyncs %.0f, mean %.1f ms, p99 ≤ %.0f ms, %.0f over 8 ms, slowest ≤ %.0f ms",
		d.wal.count, 1000*d.wal.sum/d.wal.count, 1000*d.wal.quantile(0.99), slow, 1000*d.wal.quantile(1))
}

// mustScrape scrapes the syncer's /metrics or fails the benchmark.
func (p *syncerProcess) mustScrape(b testing.TB) metricSamples {
	b.Helper()
	m, err := p.scrape(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// sum adds the samples of metric name whose labels contain every one of labels
// (`key="value"`).
func (m metricSamples) sum(name string, labels ...string) float64 {
	total := 0.0
	for series, v := range m {
		metric, rest, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(rest, l) }) {
			total += v
		}
	}
	return total
}

// label is the value of key in a Prometheus label set `a="x",b="y"}`.
func label(labels, key string) string {
	_, v, ok := strings.Cut(","+labels, ","+key+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// apiserverCounters are read from the /metrics of one or more apiservers and added up.
type apiserverCounters struct {
	requests       map[string]float64 // apiserver_request_total by "VERB resource[/subresource]"
	userCPU, gcCPU float64            // go_cpu_classes_{user,gc_total}_cpu_seconds_total
	gogc           float64            // go_gc_gogc_percent (the last apiserver's)
}

// scrapeAPIServers reads and adds up the counters of the apiservers of clients.
func scrapeAPIServers(b testing.TB, clients ...kubernetes.Interface) apiserverCounters {
	b.Helper()
	out := apiserverCounters{requests: map[string]float64{}}
	for _, cs := range clients {
		body, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(b.Context())
		if err != nil {
			b.Fatalf("reading an apiserver's /metrics: %v", err)
		}
		for _, line := range strings.Split(string(body), "\n") {
			i := strings.LastIndexByte(line, ' ')
			if i < 0 || line[0] == '#' {
				continue
			}
			v, err := strconv.ParseFloat(line[i+1:], 64)
			if err != nil {
				continue
			}
			switch series := line[:i]; series {
			case "go_cpu_classes_user_cpu_seconds_total":
				out.userCPU += v
			case "go_cpu_classes_gc_total_cpu_seconds_total":
				out.gcCPU += v
			case "go_gc_gogc_percent":
				out.gogc = v
			default:
				labels, ok := strings.CutPrefix(series, "apiserver_request_total{")
				if !ok {
					continue
				}
				key := label(labels, "verb") + " " + label(labels, "resource")
				if sub := label(labels, "subresource"); sub != "" {
					key += "/" + sub
				}
				out.requests[key] += v
			}
		}
	}
	return out
}

// minus is c − earlier.
func (c apiserverCounters) minus(earlier apiserverCounters) apiserverCounters {
	out := apiserverCounters{requests: map[string]float64{}, userCPU: c.userCPU - earlier.userCPU, gcCPU: c.gcCPU - earlier.gcCPU, gogc: c.gogc}
	for k, v := range c.requests {
		if d := v - earlier.requests[k]; d > 0 {
			out.requests[k] = d
		}
	}
	return out
}

// String lists the most frequent requests, most first, and the share of Go's GC in the
// apiservers' CPU time.
func (c apiserverCounters) String() string {
	keys := slices.SortedFunc(maps.Keys(c.requests), func(a, b string) int { return cmp.Compare(c.requests[b], c.requests[a]) })
	var parts []string
	for _, k := range keys {
		if c.requests[k] >= 10 && len(parts) < 10 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, c.requests[k]))
		}
	}
	gcShare := 0.0
	if total := c.userCPU + c.gcCPU; total > 0 {
		gcShare = 100 * c.gcCPU / total
	}
	return fmt.Sprintf("[%s] (Go GC %.0f%% of their CPU at GOGC %.0f)", strings.Join(parts, ", "), gcShare, c.gogc)
}

func clientsOf(tenants []*tenantCluster) []kubernetes.Interface {
	out := make([]kubernetes.Interface, len(tenants))
	for i, t := range tenants {
		out[i] = t.client
	}
	return out
}

// memory is one reading of the syncer's memory.
type memory struct {
	vmRSS, rssAnon float64 // bytes, from /proc/PID/status
	heapInuse      float64 // go_memstats_heap_inuse_bytes
	// heapLive is go_gc_heap_live_bytes, what a GC cycle marked: right after a forced cycle
	// (the reported figure), and at the syncer's own next cycle (nextGC).
	heapLive, heapLiveNextGC float64
	settling                 float64 // seconds waited for the syncer's own cycle
}

// readMemory reads the syncer's memory after a GC cycle it is made to run at once (a heap
// profile with gc=1, served with --profiling), and again after the next cycle of its own (a
// Go program runs one at least every 2 minutes). Its own cycle starts when its allocations
// call for it, in a quiet syncer mostly those of the benchmark's scrapes of /metrics, and
// what the syncer allocates while the cycle marks counts as marked: that reading is higher by
// whatever was being allocated then (2 MiB in session 30's runs, more when a heartbeat or a
// patrol ran). The forced cycle runs while the syncer has nothing to do but answer.
func (p *syncerProcess) readMemory(b testing.TB) memory {
	b.Helper()
	ctx := b.Context()
	if _, err := httpGet(ctx, p.metricsURL+"/debug/pprof/heap?gc=1"); err != nil {
		b.Fatalf("forcing a GC cycle of the syncer (needs --profiling): %v", err)
	}
	forced, err := p.scrape(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"go_gc_cycles_total_gc_cycles_total", "go_gc_heap_live_bytes", "go_memstats_heap_inuse_bytes"} {
		if _, ok := forced[name]; !ok {
			b.Fatalf("the syncer's /metrics has no %s: the Go runtime collector is not registered", name)
		}
	}
	status, err := procStatus(p.pid())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var m metricSamples
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, false, func(ctx context.Context) (bool, error) {
		if m, err = p.scrape(ctx); err != nil {
			return false, err
		}
		return m["go_gc_cycles_total_gc_cycles_total"] > forced["go_gc_cycles_total_gc_cycles_total"], nil
	})
	if err != nil {
		b.Fatalf("waiting for a GC cycle of the syncer: %v", err)
	}
	return memory{
		vmRSS: status["VmRSS"], rssAnon: status["RssAnon"],
		heapInuse: forced["go_memstats_heap_inuse_bytes"], heapLive: forced["go_gc_heap_live_bytes"],
		heapLiveNextGC: m["go_gc_heap_live_bytes"], settling: time.Since(start).Seconds(),
	}
}

// procStatus returns the kB fields of /proc/PID/status in bytes.
func procStatus(pid int) (map[string]float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, _ := strings.Cut(line, ":")
		if f := strings.Fields(rest); len(f) == 2 && f[1] == "kB" {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				out[name] = v * 1024
			}
		}
	}
	return out, nil
}

// percentile is the nearest-rank q-quantile (0 < q ≤ 1) of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*q-1e-9)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuMark is a reading of CPU time: this benchmark's processes by component and the whole
// machine's.
type cpuMark struct {
	at      time.Time
	ours    map[string]float64
	tenants map[string]float64 // tenant control planes by cluster key
	machine float64
	stolen  float64
}

// cpuUse is the CPU time used between two marks.
type cpuUse struct {
	wall    time.Duration
	ours    map[string]float64 // by component
	tenants map[string]float64 // tenant control planes by cluster key
	machine float64            // every process on the machine
	stolen  float64            // CPU time the VM's host gave to others while we were runnable
}

// markCPU reads the CPU time of this process, of every process whose command line mentions dir
// (grouped by component: the vnest subcommand — `up` holds the embedded etcd, `apiserver` are
// the tenant control planes, `kube-apiserver` is the super cluster's — or "bench" for this
// process), of each tenant control plane (by the cluster key its --etcd-prefix ends in) and of
// the whole machine.
func markCPU(dir string) cpuMark {
	m := cpuMark{at: time.Now(), ours: map[string]float64{}, tenants: map[string]float64{}}
	m.machine, m.stolen = machineCPU()
	if v, err := processCPU(os.Getpid()); err == nil {
		m.ours["bench"] = v
	}
	for pid, args := range dirProcesses(dir) {
		if len(args) < 2 {
			continue
		}
		v, err := processCPU(pid)
		if err != nil {
			continue
		}
		m.ours[args[1]] += v
		if args[1] != "apiserver" {
			continue
		}
		for _, a := range args {
			if prefix, ok := strings.CutPrefix(a, "--etcd-prefix="); ok {
				m.tenants[path.Base(prefix)] += v
			}
		}
	}
	return m
}

// since is the CPU time used from m until now.
func (m cpuMark) since(dir string) cpuUse {
	now := markCPU(dir)
	return cpuUse{wall: now.at.Sub(m.at), ours: minus(now.ours, m.ours), tenants: minus(now.tenants, m.tenants),
		machine: now.machine - m.machine, stolen: now.stolen - m.stolen}
}

// minus is what each key of now grew by since then.
func minus(now, then map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(now))
	for k, v := range now {
		out[k] = v - then[k]
	}
	return out
}

// tenantsOf is the CPU time of the tenant control planes of keys, each by its key, and of the
// others together.
func (u cpuUse) tenantsOf(keys ...string) string {
	var parts []string
	rest := 0.0
	for k, v := range u.tenants {
		if !slices.Contains(keys, k) {
			rest += v
		}
	}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, u.tenants[k]))
	}
	parts = append(parts, fmt.Sprintf("the other %d %.1f", len(u.tenants)-len(keys), rest))
	return "tenant control planes' CPU-s: " + strings.Join(parts, ", ")
}

// total is the CPU time of our processes (the run's components and this benchmark).
func (u cpuUse) total() float64 {
	t := 0.0
	for _, v := range u.ours {
		t += v
	}
	return t
}

// String lists the components by CPU seconds, most first, and what the rest of the machine
// used: other work on the machine slows every figure down.
func (u cpuUse) String() string {
	names := slices.SortedFunc(maps.Keys(u.ours), func(a, b string) int { return cmp.Compare(u.ours[b], u.ours[a]) })
	total := u.total()
	var parts []string
	for _, n := range names {
		if u.ours[n] >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.1f", n, u.ours[n]))
		}
	}
	return fmt.Sprintf("%.1f CPU-s in %.1f s on %d cores (%s); other processes on the machine %.1f CPU-s; stolen by the VM's host %.1f CPU-s",
		total, u.wall.Seconds(), runtime.NumCPU(), strings.Join(parts, ", "), max(0, u.machine-total), u.stolen)
}

// stealLimit is the share of a phase's CPU time (wall time × cores) the VM's host may take away
// before the phase measured the host rather than vnest: on this machine a quiet host took
// under 1% of a phase, a busy one up to 57% (BenchmarkSyncer prints what it took).
const stealLimit = 0.03

// hostBusy says how much the VM's host took away during the phase when that was over
// stealLimit, else "".
func (u cpuUse) hostBusy() string {
	avail := u.wall.Seconds() * float64(runtime.NumCPU())
	if avail <= 0 || u.stolen <= stealLimit*avail {
		return ""
	}
	return fmt.Sprintf("the VM's host took %.1f CPU-s (%.0f%%) during a phase", u.stolen, 100*u.stolen/avail)
}

// judge is the verdict on a goal: "met" or "NOT met", except that a figure measured while
// something disturbed the machine (reasons, "" for none) is no pass: "not valid: …".
func judge(ok bool, reasons ...string) string {
	var why []string
	for _, r := range reasons {
		if r != "" {
			why = append(why, r)
		}
	}
	switch {
	case len(why) == 0 && ok:
		return "met"
	case len(why) == 0:
		return "NOT met"
	case ok:
		return "not valid: " + strings.Join(why, "; ")
	}
	return "NOT met; " + strings.Join(why, "; ")
}

// machineCPU is the busy time of all CPUs since boot in seconds, and the time the hypervisor
// ran something else while a CPU of this VM had work (steal), from /proc/stat.
func machineCPU() (busy, stolen float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		switch {
		case i == 7:
			stolen = x / 100 // USER_HZ
		case i == 3 || i == 4 || i > 7: // idle, iowait; guest time is counted in user already
		default:
			busy += x / 100
		}
	}
	return busy, stolen
}

// processCPU is the user + system CPU time of pid in seconds.
func processCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return (utime + stime) / 100, nil // USER_HZ is 100 on every Linux Go supports
}
