package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
)

// Environment and fixed settings of the benchmarks.
const (
	// binaryEnv names the vnest binary to run; default bin/vnest at the repository root.
	binaryEnv = "VNEST_BENCH_BINARY"
	// syncerArgsEnv holds extra `vnest syncer` flags, space separated.
	syncerArgsEnv = "VNEST_BENCH_SYNCER_ARGS"
	// tenantCPULimitEnv is a CPU quantity ("500m", "1") that every tenant's control plane gets
	// as spec.controlPlane.resources.limits.cpu; none by default.
	tenantCPULimitEnv = "VNEST_BENCH_TENANT_CPU_LIMIT"
	// logDirEnv names a directory that receives the logs of the run (vnest up, syncer,
	// components, tenants) when it ends; by default they go with the data directory.
	logDirEnv = "VNEST_BENCH_LOG_DIR"

	// superPort is the super cluster's apiserver port: `vnest up` uses the block
	// superPort…superPort+11 and gives local tenant control planes superPort+100…+199.
	superPort = 17443
	// syncerMetricsPort serves the syncer's /metrics and /healthz (outside both blocks).
	syncerMetricsPort = 17460

	// clientQPS and clientBurst are high enough that the benchmark's own clients are never
	// what a figure measures.
	clientQPS, clientBurst = 500, 1000

	upReadyTimeout = 5 * time.Minute
	stopTimeout    = 90 * time.Second
	logTailLines   = 60
)

// progress prints a timestamped line to stderr at once: benchmark logs only appear at the end
// of a run that takes many minutes.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// vnestBinary returns a copy of $VNEST_BENCH_BINARY or of bin/vnest at the repository root
// (two levels up from this package, where `go test` runs it), with a copy of the
// vnest-apiserver beside it when the manager would run tenants from that one
// (layout.ControlPlaneBinary).
func vnestBinary(b testing.TB) string {
	b.Helper()
	bin := os.Getenv(binaryEnv)
	if bin == "" {
		bin, _ = filepath.Abs(filepath.Join("..", "..", "bin", "vnest"))
	}
	if info, err := os.Stat(bin); err != nil || info.Mode().Perm()&0o111 == 0 {
		b.Fatalf("no executable vnest binary at %s (%v): run `make build` at the repository root or set %s", bin, err, binaryEnv)
	}
	dir := b.TempDir()
	vnest := snapshot(b, bin, dir, "vnest")
	if cp := layout.ControlPlaneBinary(bin); cp != bin {
		snapshot(b, cp, dir, layout.ControlPlaneBinaryName) // after vnest: not older
	}
	return vnest
}

// snapshot copies bin into dir as name and returns the copy: processes started later in the
// run (tenant control planes) must run the same binary as the first ones, even if bin/vnest is
// rebuilt meanwhile.
func snapshot(b testing.TB, bin, dir, name string) string {
	b.Helper()
	src, err := os.Open(bin)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	copyPath := filepath.Join(dir, name)
	dst, err := os.OpenFile(copyPath, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
	progress("running %s (a copy of %s)", copyPath, bin)
	return copyPath
}

// process is a child process of the benchmark. It dies with the benchmark (SIGKILL as parent
// death signal) and is otherwise stopped with SIGINT, as a user's Ctrl-C would.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once cmd.Wait returned
	err     error         // cmd.Wait's result; read after done
}

// startProcess runs bin with args, its output in dir/<name>.log.
func startProcess(b testing.TB, dir, name, bin string, args ...string) *process {
	b.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	p := &process{name: name, cmd: exec.Command(bin, args...), logPath: logPath, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = p.cmd.Start()
	logFile.Close() // the child has its own copy
	if err != nil {
		b.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	progress("started %s (pid %d): %s %s", name, p.cmd.Process.Pid, bin, strings.Join(args, " "))
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGINT and waits for a clean exit; after stopTimeout it kills the process and
// reports that as an error.
func (p *process) stop() error {
	if p.exited() {
		return fmt.Errorf("%s exited before it was stopped: %v", p.name, p.err)
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		return fmt.Errorf("interrupting %s: %w", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGINT and was killed", p.name, stopTimeout)
	}
	if p.err != nil {
		return fmt.Errorf("%s did not exit cleanly: %w", p.name, p.err)
	}
	progress("%s stopped in %v", p.name, time.Since(start).Round(time.Millisecond))
	return nil
}

// tail is the end of the process's log.
func (p *process) tail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return strings.Join(lines, "\n")
}

// superCluster is a running `vnest up` with its manager and without its syncer and demo tenant.
type superCluster struct {
	dir        string
	kubeconfig string
	up         *process
	config     *rest.Config
	client     kubernetes.Interface
	vcs        client.Client // VirtualClusters and their Secrets
	etcd       *http.Client  // the embedded etcd's /metrics, with the data directory's client certificate
}

// startSuper runs `vnest up` with nodes simulated nodes in a fresh data directory and waits
// for its kubeconfig. It is stopped (SIGINT) in b.Cleanup, which then checks that no process
// of the data directory is left.
func startSuper(b testing.TB, bin string, nodes int) *superCluster {
	b.Helper()
	dir := b.TempDir()
	s := &superCluster{dir: dir, kubeconfig: filepath.Join(dir, "super.kubeconfig")}
	s.up = startProcess(b, dir, "vnest-up", bin, "up", "--data-dir", dir, "--nodes", "simulated",
		"--node-count", strconv.Itoa(nodes), "--apiserver-port", strconv.Itoa(superPort), "--no-tenant", "--no-syncer")
	b.Cleanup(func() {
		if b.Failed() {
			b.Logf("last lines of %s:\n%s", s.up.logPath, s.up.tail())
		}
		if err := s.up.stop(); err != nil {
			b.Error(err)
		}
		killLeftovers(b, dir)
		keepLogs(b, dir)
	})
	start := time.Now()
	err := wait.PollUntilContextTimeout(b.Context(), 200*time.Millisecond, upReadyTimeout, true, func(context.Context) (bool, error) {
		if s.up.exited() {
			return false, fmt.Errorf("vnest up exited: %v", s.up.err)
		}
		_, err := os.Stat(s.kubeconfig)
		return err == nil, nil
	})
	if err != nil {
		b.Fatalf("waiting for %s: %v\n%s", s.kubeconfig, err, s.up.tail())
	}
	progress("super cluster ready after %v", time.Since(start).Round(100*time.Millisecond))
	if s.config, err = clientcmd.BuildConfigFromFlags("", s.kubeconfig); err != nil {
		b.Fatal(err)
	}
	s.client = newClientset(b, s.config)
	pki := filepath.Join(dir, "pki")
	if s.etcd, err = rest.HTTPClientFor(&rest.Config{Timeout: 10 * time.Second, TLSClientConfig: rest.TLSClientConfig{
		CAFile: filepath.Join(pki, "etcd-ca.crt"), CertFile: filepath.Join(pki, "etcd-client.crt"), KeyFile: filepath.Join(pki, "etcd-client.key"),
	}}); err != nil {
		b.Fatal(err)
	}
	scheme := kruntime.NewScheme()
	for _, add := range []func(*kruntime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			b.Fatal(err)
		}
	}
	if s.vcs, err = client.New(s.config, client.Options{Scheme: scheme}); err != nil {
		b.Fatal(err)
	}
	return s
}

// killLeftovers kills, and reports, every process whose command line mentions dir: once
// `vnest up` has stopped, none of its components or tenant control planes may be left.
func killLeftovers(b testing.TB, dir string) {
	b.Helper()
	for pid, args := range dirProcesses(dir) {
		b.Errorf("process %d outlived vnest up; killing it: %s", pid, strings.Join(args, " "))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// dirProcesses are the processes other than this one whose command line mentions dir, with
// their arguments.
func dirProcesses(dir string) map[int][]string {
	out := map[int][]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		cmdline, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		if pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f))); pid != os.Getpid() {
			out[pid] = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		}
	}
	return out
}

// keepLogs copies every *.log under dir to $VNEST_BENCH_LOG_DIR, if set.
func keepLogs(b testing.TB, dir string) {
	b.Helper()
	to := os.Getenv(logDirEnv)
	if to == "" {
		return
	}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		dst := filepath.Join(to, strings.ReplaceAll(rel, string(filepath.Separator), "_"))
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		b.Errorf("keeping the logs in %s: %v", to, err)
	}
	progress("logs kept in %s", to)
}

// newClientset is a clientset of cfg with the benchmark's QPS and a request timeout.
func newClientset(b testing.TB, cfg *rest.Config) kubernetes.Interface {
	b.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	cfg.Timeout = time.Minute
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

// tenantCluster is a Running VirtualCluster with a client of its apiserver.
type tenantCluster struct {
	name   string
	key    string // status.clusterKey: super namespaces are "<key>-<ns>"
	config *rest.Config
	client kubernetes.Interface
	pods   *podTracker // the tenant's pods, seen as the syncer sees them; set by the benchmark
}

// createTenants creates VirtualClusters name-0…name-(n-1) with the local provisioner, all at
// once, and waits until every one is Running with its kubeconfig Secret.
func createTenants(b testing.TB, s *superCluster, prefix string, n int) []*tenantCluster {
	b.Helper()
	ctx := b.Context()
	start := time.Now()
	// `vnest up` installs the CRD once the super cluster is ready.
	err := pollUntil(ctx, 2*time.Minute, func(context.Context) error {
		_, err := s.client.Discovery().ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
		return err
	})
	if err != nil {
		b.Fatalf("waiting for the VirtualCluster CRD: %v", err)
	}
	var resources *corev1.ResourceRequirements
	if limit := tenantCPULimit(); limit != "" {
		q, err := resource.ParseQuantity(limit)
		if err != nil {
			b.Fatalf("%s: %v", tenantCPULimitEnv, err)
		}
		resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q}}
	}
	for i := range n {
		vc := &v1alpha1.VirtualCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: fmt.Sprintf("%s-%d", prefix, i)},
			Spec:       v1alpha1.VirtualClusterSpec{ControlPlane: &v1alpha1.ControlPlaneSpec{Provisioner: v1alpha1.ProvisionerLocal, Resources: resources}},
		}
		// The client's REST mapper may still have to learn the new group: retry a while.
		if err := pollUntil(ctx, time.Minute, func(ctx context.Context) error {
			if err := s.vcs.Create(ctx, vc); !apierrors.IsAlreadyExists(err) {
				return err
			}
			return nil
		}); err != nil {
			b.Fatalf("creating VirtualCluster %s: %v", vc.Name, err)
		}
	}
	tenants := make([]*tenantCluster, n)
	pending := ""
	err = wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		var notYet []string
		for i := range n {
			if tenants[i] != nil {
				continue
			}
			vc := &v1alpha1.VirtualCluster{}
			if err := s.vcs.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: fmt.Sprintf("%s-%d", prefix, i)}, vc); err != nil {
				return false, err
			}
			if vc.Status.Phase != v1alpha1.PhaseRunning || vc.Status.ClusterKey == "" {
				notYet = append(notYet, fmt.Sprintf("%s (%s)", vc.Name, vc.Status.Phase))
				continue
			}
			tenants[i] = tenantOf(b, s, vc)
		}
		pending = strings.Join(notYet, ", ")
		return len(notYet) == 0, nil
	})
	if err != nil {
		b.Fatalf("waiting for %d VirtualClusters to be Running: %v; not yet: %s", n, err, pending)
	}
	progress("%d tenants Running %v after their creation", n, time.Since(start).Round(100*time.Millisecond))
	return tenants
}

func tenantCPULimit() string { return strings.TrimSpace(os.Getenv(tenantCPULimitEnv)) }

// tenantOf reads the kubeconfig Secret of a Running VirtualCluster and connects to the tenant.
func tenantOf(b testing.TB, s *superCluster, vc *v1alpha1.VirtualCluster) *tenantCluster {
	b.Helper()
	secret := &corev1.Secret{}
	if err := s.vcs.Get(b.Context(), client.ObjectKey{Namespace: vc.Namespace, Name: vc.KubeconfigSecretName()}, secret); err != nil {
		b.Fatalf("reading the kubeconfig Secret of %s: %v", vc.Name, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(secret.Data["kubeconfig"])
	if err != nil {
		b.Fatalf("the kubeconfig of %s: %v", vc.Name, err)
	}
	return &tenantCluster{name: vc.Name, key: vc.Status.ClusterKey, config: cfg, client: newClientset(b, cfg)}
}

// waitSyncing waits until the syncer reports (condition Syncing=True) that it serves every
// tenant.
func waitSyncing(b testing.TB, s *superCluster, tenants []*tenantCluster) {
	b.Helper()
	var notYet []string
	err := wait.PollUntilContextTimeout(b.Context(), 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		notYet = notYet[:0]
		for _, t := range tenants {
			vc := &v1alpha1.VirtualCluster{}
			if err := s.vcs.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: t.name}, vc); err != nil {
				return false, err
			}
			if !meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing) {
				notYet = append(notYet, t.name)
			}
		}
		return len(notYet) == 0, nil
	})
	if err != nil {
		b.Fatalf("waiting for the syncer to serve every tenant: %v; not yet: %v", err, notYet)
	}
}

// syncerProcess is `vnest syncer` run by the benchmark, with its metrics endpoint.
type syncerProcess struct {
	*process
	metricsURL string
}

// startSyncer runs `vnest syncer` against the super cluster until the benchmark ends and waits
// for its /healthz.
func startSyncer(b testing.TB, bin string, s *superCluster) *syncerProcess {
	b.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(syncerMetricsPort)
	// --profiling: readMemory has the syncer run a GC cycle through its heap profile.
	args := append([]string{"syncer", "--kubeconfig", s.kubeconfig, "--metrics-bind-address", addr, "--profiling"}, strings.Fields(os.Getenv(syncerArgsEnv))...)
	p := &syncerProcess{process: startProcess(b, s.dir, "syncer", bin, args...), metricsURL: "http://" + addr}
	b.Cleanup(func() {
		if b.Failed() {
			b.Logf("last lines of %s:\n%s", p.logPath, p.tail())
		}
		if err := p.stop(); err != nil {
			b.Error(err)
		}
	})
	err := wait.PollUntilContextTimeout(b.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("vnest syncer exited: %v", p.err)
		}
		_, err := httpGet(ctx, p.metricsURL+"/healthz")
		return err == nil, nil
	})
	if err != nil {
		b.Fatalf("waiting for the syncer's /healthz: %v\n%s", err, p.tail())
	}
	return p
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	return httpGetWith(ctx, http.DefaultClient, url)
}

func httpGetWith(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, err
}

// podTracker follows every pod of one cluster with an informer and records, by
// "namespace/name", when each was first seen, first seen on a node and first seen Running.
// Times are taken in the event handler, so they do not depend on how often anyone looks.
type podTracker struct {
	mu        sync.Mutex
	firstSeen map[string]time.Time
	onNode    map[string]time.Time
	running   map[string]time.Time
	present   map[string]bool
	changed   chan struct{} // closed and replaced on every event
}

// trackPods starts a pod informer on cs that runs until the benchmark ends and waits for its
// first list.
func trackPods(b testing.TB, cs kubernetes.Interface) *podTracker {
	b.Helper()
	pt := &podTracker{firstSeen: map[string]time.Time{}, onNode: map[string]time.Time{}, running: map[string]time.Time{}, present: map[string]bool{}, changed: make(chan struct{})}
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().Pods().Informer()
	_ = inf.SetTransform(func(obj any) (any, error) {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetManagedFields(nil) // never read; keeps the benchmark's own memory small
		}
		return obj, nil
	})
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { pt.observe(obj, false) },
		UpdateFunc: func(_, obj any) { pt.observe(obj, false) },
		DeleteFunc: func(obj any) { pt.observe(obj, true) },
	})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	b.Cleanup(func() {
		close(stop)
		factory.Shutdown()
	})
	factory.Start(stop)
	if !cache.WaitForCacheSync(b.Context().Done(), inf.HasSynced) {
		b.Fatal("pod informer did not sync")
	}
	return pt
}

func (pt *podTracker) observe(obj any, deleted bool) {
	now := time.Now()
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	key := p.Namespace + "/" + p.Name
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if deleted {
		delete(pt.present, key)
	} else {
		pt.present[key] = true
		if _, ok := pt.firstSeen[key]; !ok {
			pt.firstSeen[key] = now
		}
		if _, ok := pt.onNode[key]; !ok && p.Spec.NodeName != "" {
			pt.onNode[key] = now
		}
		if _, ok := pt.running[key]; !ok && p.Status.Phase == corev1.PodRunning {
			pt.running[key] = now
		}
	}
	close(pt.changed)
	pt.changed = make(chan struct{})
}

// seen returns when the pod ns/name was first seen.
func (pt *podTracker) seen(ns, name string) (time.Time, bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	at, ok := pt.firstSeen[ns+"/"+name]
	return at, ok
}

// mustSee waits (briefly: the pod was created) until the pod ns/name has been seen and returns
// when it first was.
func (pt *podTracker) mustSee(b testing.TB, ns, name string) time.Time {
	b.Helper()
	err := pt.await(b.Context(), time.Minute, "pod "+ns+"/"+name, func() (bool, string) {
		_, ok := pt.seen(ns, name)
		return ok, "not seen"
	})
	if err != nil {
		b.Fatal(err)
	}
	at, _ := pt.seen(ns, name)
	return at
}

// milestones returns, for the pods ns/names, when each was first seen, first seen on a node
// and first seen Running, as durations since start; a pod not (yet) there is left out.
func (pt *podTracker) milestones(ns string, names []string, start time.Time) (seen, onNode, running []time.Duration) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for _, name := range names {
		key := ns + "/" + name
		for _, m := range []struct {
			at  map[string]time.Time
			out *[]time.Duration
		}{{pt.firstSeen, &seen}, {pt.onNode, &onNode}, {pt.running, &running}} {
			if at, ok := m.at[key]; ok {
				*m.out = append(*m.out, at.Sub(start))
			}
		}
	}
	return seen, onNode, running
}

// counts tells how many of the pods ns/names are present, were ever seen and were ever seen
// Running, and the latest time one of them was first seen Running.
func (pt *podTracker) counts(ns string, names []string) (present, seen, running int, lastRunning time.Time) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for _, name := range names {
		key := ns + "/" + name
		if pt.present[key] {
			present++
		}
		if _, ok := pt.firstSeen[key]; ok {
			seen++
		}
		if at, ok := pt.running[key]; ok {
			running++
			if at.After(lastRunning) {
				lastRunning = at
			}
		}
	}
	return present, seen, running, lastRunning
}

// await calls cond after every event until it holds or timeout passes; the error says what
// was awaited and cond's last word on it.
func (pt *podTracker) await(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		pt.mu.Lock()
		changed := pt.changed
		pt.mu.Unlock()
		ok, state := cond()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("gave up after %v waiting for %s: %s", timeout, what, state)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// pollUntil calls f every 200 ms until it returns nil or timeout passes; it returns f's last
// error then.
func pollUntil(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// retryTransient retries f while the apiserver answers that it is too busy or timed out:
// under a flood that is load, not a failure of the path measured.
func retryTransient(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		err = f()
		if !(apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return err
}
