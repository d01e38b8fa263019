package apiserver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/exepages"
)

// Environment of the idle benchmarks.
const (
	// benchArgsEnv holds extra `vnest apiserver` flags, space separated,
	// to measure one knob against the defaults.
	benchArgsEnv = "VNEST_BENCH_APISERVER_ARGS"
	// benchIdleEnv is how long the control plane idles before its RSS is
	// read (a Go duration; default 60s).
	benchIdleEnv = "VNEST_BENCH_IDLE"
	// benchBinaryEnv is a vnest binary to measure (`make build`, then
	// VNEST_BENCH_BINARY=$PWD/bin/vnest); the tenant runs from the
	// vnest-apiserver beside it when the manager would use that one
	// (layout.ControlPlaneBinary). Default: this test binary, which links
	// less than vnest and so maps less and starts with a smaller heap.
	benchBinaryEnv = "VNEST_BENCH_BINARY"
)

// benchControlPlaneBinary is the binary a benchmark runs the tenant from
// (benchBinaryEnv); "" means this test binary.
func benchControlPlaneBinary() string {
	if vnest := os.Getenv(benchBinaryEnv); vnest != "" {
		return layout.ControlPlaneBinary(vnest)
	}
	return ""
}

// BenchmarkIdleControlPlane starts an empty tenant control plane as a child
// process (on an etcd in this process), lets it idle and reports its memory,
// its CPU use while idle and its start-up time:
//
//	go test ./apiserver -run '^$' -bench IdleControlPlane -benchtime 1x
//	VNEST_BENCH_BINARY=$PWD/bin/vnest go test ./apiserver -run '^$' -bench Idle -benchtime 1x
//	VNEST_BENCH_APISERVER_ARGS='--gc-percent=100' go test ./apiserver -run '^$' -bench IdleControlPlane -benchtime 1x
//
// Reported: s-to-ready (process start to admin.kubeconfig), cpu-s-to-ready
// (CPU time the process used until then; steadier than s-to-ready on a busy
// machine), MiB-idle-RSS
// (VmRSS after the idle period), MiB-idle-anon (RssAnon: the process's own
// memory; the rest of VmRSS is the executable's pages, shared by every
// process of the same binary), MiB-peak-RSS (VmHWM), %CPU-idle (of one core,
// over the idle period), MiB/s-idle-alloc (Go heap allocation over the idle
// period, from the process's go_memstats_alloc_bytes_total: what gcTuner
// compares with its busy threshold), etcd-connections (the process's
// established connections to its etcd at the end of the idle period; one
// for all resources since package sharedetcd, plus upstream's few),
// etcd-goroutines and MiB-etcd-heap (what the etcd member, which runs in the
// benchmark's process, holds more at that point than before the start: the
// cost of one idle tenant at a shared etcd, give or take the benchmark's own
// client).
func BenchmarkIdleControlPlane(b *testing.B) {
	etcd := startEtcd(b)
	for i := 0; b.Loop(); i++ {
		state := b.TempDir()
		args := append(tenantArgs(b, etcd, state, fmt.Sprintf("/vnest/tenants/bench-%d", i)), strings.Fields(os.Getenv(benchArgsEnv))...)
		startAndMeasureIdle(b, etcd, args, state)
	}
}

// startAndMeasureIdle starts the control plane of args on state as a child process (the binary of
// VNEST_BENCH_BINARY) and reports its start and idle figures (measureIdle).
func startAndMeasureIdle(b *testing.B, etcd string, args []string, state string) {
	b.Helper()
	bin := benchControlPlaneBinary()
	if bin != "" {
		// As read from disk, not as `go build` left it in the page cache (exepages.Evict).
		if err := exepages.Evict(bin); err != nil {
			b.Fatal(err)
		}
	}
	before := readEtcdSide()
	start := time.Now()
	tn, cmd := startChildTenant(b, bin, args, state)
	client, err := kubernetes.NewForConfig(tn.admin)
	if err != nil {
		b.Fatal(err)
	}
	measureIdle(b, cmd, time.Since(start), client, etcd, before, tn.stop)
}

// BenchmarkIdleStockKubeAPIServer is the direct path to compare with: the
// upstream kube-apiserver carried by VNEST_BENCH_BINARY (`vnest
// kube-apiserver`) alone, with the flags a tenant's gets, Go's default GC
// settings and no controllers.
func BenchmarkIdleStockKubeAPIServer(b *testing.B) {
	bin := os.Getenv(benchBinaryEnv)
	if bin == "" {
		b.Skip(benchBinaryEnv + " is not set: this benchmark runs `vnest kube-apiserver`")
	}
	etcd := startEtcd(b)
	for i := 0; b.Loop(); i++ {
		o := NewOptions()
		o.StateDir, o.EtcdServers, o.EtcdPrefix = b.TempDir(), []string{etcd}, fmt.Sprintf("/vnest/tenants/stock-%d", i)
		o.BindAddress, o.SecurePort = "127.0.0.1", freePort(b)
		c, err := o.Complete()
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, append([]string{"kube-apiserver"}, c.apiServerArgs()...)...)
		before := readEtcdSide()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-done
		}
		client, err := c.adminClient()
		if err != nil {
			b.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(b.Context(), 100*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
			var code int
			client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
			return code == 200, nil
		})
		if err != nil {
			stop()
			b.Fatalf("kube-apiserver not ready: %v", err)
		}
		measureIdle(b, cmd, time.Since(start), client, etcd, before, stop)
	}
}

// etcdSide is what the etcd member in this process holds: its goroutines and heap, with the
// benchmark's own few.
type etcdSide struct {
	goroutines int
	heapInuse  uint64
}

// readEtcdSide reads etcdSide after a GC.
func readEtcdSide() etcdSide {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return etcdSide{goroutines: runtime.NumGoroutine(), heapInuse: ms.HeapInuse}
}

// measureIdle lets the started process cmd idle, reports its figures and stops it; client
// reads its /metrics, etcd is the URL of the etcd (in this process) it stores in, before what
// that etcd held before the process started.
func measureIdle(b *testing.B, cmd *exec.Cmd, toReady time.Duration, client kubernetes.Interface, etcd string, before etcdSide, stop func()) {
	b.Helper()
	idle := time.Minute
	if v := os.Getenv(benchIdleEnv); v != "" {
		var err error
		if idle, err = time.ParseDuration(v); err != nil {
			b.Fatalf("%s: %v", benchIdleEnv, err)
		}
	}
	b.StopTimer()
	defer b.StartTimer()
	pid := cmd.Process.Pid
	cpuBefore, err := readCPUTime(pid) // all of it spent starting up
	if err != nil {
		b.Fatal(err)
	}
	allocBefore := goMetrics(b, client)[allocatedTotal]
	select {
	case <-time.After(idle):
	case <-b.Context().Done():
		b.Fatal("cancelled")
	}
	status, err := readProcStatus(pid)
	if err != nil {
		b.Fatal(err)
	}
	cpuAfter, err := readCPUTime(pid)
	if err != nil {
		b.Fatal(err)
	}
	goAfter := goMetrics(b, client)
	allocRate := (goAfter[allocatedTotal] - allocBefore) / idle.Seconds() / (1 << 20)
	conns := etcdConnections(b, etcd)
	after := readEtcdSide()
	etcdGoroutines, etcdHeap := after.goroutines-before.goroutines, (float64(after.heapInuse)-float64(before.heapInuse))/(1<<20)
	stop()
	idleCPU := (cpuAfter - cpuBefore) / idle.Seconds() * 100
	b.ReportMetric(toReady.Seconds(), "s-to-ready")
	b.ReportMetric(cpuBefore, "cpu-s-to-ready")
	b.ReportMetric(float64(status["VmRSS"])/1024, "MiB-idle-RSS")
	b.ReportMetric(float64(status["RssAnon"])/1024, "MiB-idle-anon")
	b.ReportMetric(float64(status["VmHWM"])/1024, "MiB-peak-RSS")
	b.ReportMetric(idleCPU, "%CPU-idle")
	b.ReportMetric(allocRate, "MiB/s-idle-alloc")
	b.ReportMetric(float64(conns), "etcd-connections")
	b.ReportMetric(float64(etcdGoroutines), "etcd-goroutines")
	b.ReportMetric(etcdHeap, "MiB-etcd-heap")
	b.Logf("%q: ready after %s (%.2fs CPU), after %s idle VmRSS %d KiB (anon %d, file %d), VmHWM %d KiB, idle CPU %.1f%%, allocating %.2f MiB/s; at etcd: %d connections, %d goroutines and %.1f MiB heap more than before",
		cmd.Args, toReady.Round(time.Millisecond), cpuBefore, idle,
		status["VmRSS"], status["RssAnon"], status["RssFile"], status["VmHWM"], idleCPU, allocRate, conns, etcdGoroutines, etcdHeap)
	b.Logf("%s", goMemoryLine(goAfter))
}

// allocatedTotal is the goMetrics sample of the bytes the Go heap ever allocated.
const allocatedTotal = "go_memstats_alloc_bytes_total"

// goMetrics returns the unlabelled go_* samples of the apiserver's /metrics by name.
func goMetrics(b *testing.B, client kubernetes.Interface) map[string]float64 {
	b.Helper()
	body, err := client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(b.Context())
	if err != nil {
		b.Fatalf("reading /metrics: %v", err)
	}
	out := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		name, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !strings.HasPrefix(name, "go_") || strings.Contains(name, "{") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("%s %q: %v", name, v, err)
		}
		out[name] = f
	}
	if _, ok := out[allocatedTotal]; !ok {
		b.Fatal("/metrics has no " + allocatedTotal)
	}
	return out
}

// goMemoryLine says where the Go runtime's memory is, from goMetrics: the heap in use (with the
// objects in it, live or not yet collected, and the heap size of the next GC), the heap
// freed but not yet returned to the OS, goroutine stacks, the runtime's own structures, and the
// goroutine and thread counts. Together they are most of RssAnon.
func goMemoryLine(m map[string]float64) string {
	mib := func(names ...string) float64 {
		var sum float64
		for _, n := range names {
			sum += m["go_memstats_"+n+"_bytes"]
		}
		return sum / (1 << 20)
	}
	return fmt.Sprintf("Go heap in use %.1f MiB (objects %.1f, next GC at %.1f), free not returned %.1f, stacks %.1f, runtime %.1f (GC %.1f); %.0f goroutines, %.0f threads",
		mib("heap_inuse"), mib("heap_alloc"), mib("next_gc"), mib("heap_idle")-mib("heap_released"), mib("stack_inuse"),
		mib("mspan_sys", "mcache_sys", "buck_hash_sys", "gc_sys", "other_sys"), mib("gc_sys"),
		m["go_goroutines"], m["go_threads"])
}

// readProcStatus returns the kB fields of /proc/PID/status.
func readProcStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		if v, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// readCPUTime returns the user+system CPU time of pid in seconds.
func readCPUTime(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, data)
	}
	return (utime + stime) / clockTicksPerSecond, nil
}

// clockTicksPerSecond is USER_HZ, 100 on every Linux platform Go supports.
const clockTicksPerSecond = 100

// Data of BenchmarkRestartWithData: ConfigMaps of restartDataSize bytes each, 24 MB in all.
const (
	restartConfigMaps = 3000
	restartDataSize   = 8000
)

// BenchmarkRestartWithData restarts a tenant control plane that holds data — 3,000 ConfigMaps of
// 8 KB, which its watch cache loads at start — and reports the restart as
// BenchmarkIdleControlPlane reports a start: the start-up memory limit (--start-memory-limit,
// following the live heap) must not make a tenant with data slow to start:
//
//	VNEST_BENCH_BINARY=$PWD/bin/vnest go test ./apiserver -run '^$' -bench RestartWithData -benchtime 1x
//	VNEST_BENCH_APISERVER_ARGS='--start-memory-limit=150Mi' VNEST_BENCH_BINARY=$PWD/bin/vnest go test ./apiserver -run '^$' -bench RestartWithData -benchtime 1x
func BenchmarkRestartWithData(b *testing.B) {
	etcd := startEtcd(b)
	state := b.TempDir()
	args := append(tenantArgs(b, etcd, state, "/vnest/tenants/restart"), strings.Fields(os.Getenv(benchArgsEnv))...)
	tn, _ := startChildTenant(b, benchControlPlaneBinary(), args, state)
	fast := rest.CopyConfig(tn.admin)
	fast.QPS, fast.Burst = 500, 1000 // client-go's default (5/s) would take 10 minutes
	client, err := kubernetes.NewForConfig(fast)
	if err != nil {
		b.Fatal(err)
	}
	createConfigMaps(b, client, restartConfigMaps, strings.Repeat("x", restartDataSize))
	tn.stop()
	for b.Loop() {
		startAndMeasureIdle(b, etcd, args, state)
	}
}

// createConfigMaps creates n ConfigMaps holding data in namespace default, 8 at a time.
func createConfigMaps(b *testing.B, client kubernetes.Interface, n int, data string) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"d": data}}
			_, err := client.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(b.Context(), cm, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("creating %d ConfigMaps: %v", n, err)
	}
}
