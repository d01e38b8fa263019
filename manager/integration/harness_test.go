package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/manager"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

const tenantPorts = "20300-20349"

// super is the shared `vnest up` super cluster, started by the first test
// that needs it and stopped by TestMain.
var super struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	done   chan error
	binary string
	err    error // why it could not start; tests skip or fail with it
}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // each manager gets the test's logger
	code := m.Run()
	stopSuper()
	if super.dir != "" {
		if code == 0 {
			os.RemoveAll(super.dir)
		} else {
			// CI keeps the test output, not the directory: show how vnest up ended.
			fmt.Fprintf(os.Stderr, "super cluster and manager logs kept in %s; the end of up.log:\n%s\n",
				super.dir, logTail(filepath.Join(super.dir, "up.log"), 30))
		}
	}
	os.Exit(code)
}

// skipf skips, except under CI=true, where a missing binary is a failure:
// CI must run these tests.
func skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// vnestBinary finds a vnest binary with the commands the tests need.
func vnestBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("VNEST_BINARY")
	if bin == "" {
		bin, _ = filepath.Abs(filepath.Join("..", "..", "bin", "vnest"))
	}
	if _, err := os.Stat(bin); err != nil {
		skipf(t, "skipping: %s is missing; run make build (or set VNEST_BINARY)", bin)
	}
	for _, cmd := range []string{"up", "apiserver"} {
		if out, err := exec.Command(bin, cmd, "--help").CombinedOutput(); err != nil {
			skipf(t, "skipping: %s has no working %q command (%v: %s); run make build once it is wired in (or set VNEST_BINARY)", bin, cmd, err, firstLine(out))
		}
	}
	if _, ok := upFlags(bin); !ok {
		skipf(t, "skipping: %s up runs a manager of its own and has no --no-manager flag to turn it off; "+
			"two managers would fight over the same VirtualClusters (set VNEST_BINARY to a vnest without it)", bin)
	}
	return bin
}

// upFlags are the extra `vnest up` flags the tests need: the manager under
// test runs in the test process, so a `vnest up` that starts a manager of
// its own must be told not to. ok is false when that cannot be done.
func upFlags(bin string) (flags []string, ok bool) {
	out, _ := exec.Command(bin, "up", "--help").CombinedOutput()
	help := string(out)
	switch {
	case strings.Contains(help, "--no-manager"):
		// No syncer either: these tests look at the tenant control plane and
		// create super namespaces of their own that a syncer would also create.
		return []string{"--no-manager", "--no-syncer"}, true
	case strings.Contains(help, "--no-tenant"): // it runs a manager
		return nil, false
	}
	return nil, true // it runs no manager
}

// superCluster starts the shared super cluster once and returns its data dir.
func superCluster(t testing.TB) string {
	t.Helper()
	bin := vnestBinary(t)
	if super.dir == "" && super.err == nil {
		super.binary = bin
		super.err = startSuper(bin)
	}
	if super.err != nil {
		t.Fatalf("super cluster: %v", super.err)
	}
	select {
	case err := <-super.done:
		super.done <- err
		t.Fatalf("super cluster: vnest up exited (%v); the end of its log:\n%s", err, logTail(filepath.Join(super.dir, "up.log"), 30))
	default:
	}
	return super.dir
}

// logTail is the last n lines of the file at path, or why it cannot be read.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func startSuper(bin string) error {
	super.port = 20200
	if p := os.Getenv("VNEST_TEST_PORT"); p != "" {
		var err error
		if super.port, err = strconv.Atoi(p); err != nil {
			return fmt.Errorf("VNEST_TEST_PORT: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "vnest-manager-it-")
	if err != nil {
		return err
	}
	super.dir = dir
	log, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		return err
	}
	extra, _ := upFlags(bin)
	args := append([]string{"up", "--nodes", "simulated", "--apiserver-port", strconv.Itoa(super.port), "--data-dir", dir}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	super.cmd, super.done = cmd, make(chan error, 1)
	go func() { super.done <- cmd.Wait(); log.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		select {
		case err := <-super.done:
			super.done <- err
			return false, fmt.Errorf("vnest up exited: %v", err)
		default:
		}
		_, err := os.Stat(filepath.Join(dir, "super.kubeconfig"))
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s/super.kubeconfig: %w; see %s", dir, err, log.Name())
	}
	return nil
}

func stopSuper() {
	if super.cmd == nil {
		return
	}
	_ = super.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-super.done:
	case <-time.After(time.Minute):
		_ = super.cmd.Process.Kill()
		<-super.done
	}
}

// superClient is a client of the super cluster with the CRD installed.
func superClient(t testing.TB) client.Client {
	t.Helper()
	dir := superCluster(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "super.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: clientScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	installCRD(t, c)
	return c
}

// clientScheme has the VirtualCluster, built-in and CRD types.
func clientScheme(t testing.TB) *runtime.Scheme {
	scheme := manager.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return scheme
}

func installCRD(t testing.TB, c client.Client) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "manifests", "crd", "tenancy.vnest.dev_virtualclusters.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), crd); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	waitEstablished(t, c, crd)
}

// waitEstablished waits until crd serves its resource.
func waitEstablished(t testing.TB, c client.Client, crd *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	waitUntil(t, time.Minute, "CRD "+crd.Name+" to be established", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return false, err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// managers counts the managers started, to name their logs.
var managers int

// runningManager is a manager started by a test.
type runningManager struct {
	stop     func()
	stateDir string
}

// startManager runs the manager in this process against the super cluster,
// with the super cluster's etcd as the default storage, until the test ends
// or stop is called. Its log goes to a file in the super cluster's directory.
func startManager(t testing.TB, stateDir string) *runningManager {
	t.Helper()
	dir := superCluster(t)
	pkiDir := filepath.Join(dir, "pki")
	o := manager.NewOptions()
	o.Kubeconfig = filepath.Join(dir, "super.kubeconfig")
	o.EtcdServers = []string{fmt.Sprintf("https://127.0.0.1:%d", super.port+1)}
	etcdCA := superEtcdCA(t)
	o.EtcdCAFile, o.EtcdCAKeyFile = filepath.Join(pkiDir, etcdCA+".crt"), filepath.Join(pkiDir, etcdCA+".key")
	o.EtcdCertFile, o.EtcdKeyFile = filepath.Join(pkiDir, "etcd-client.crt"), filepath.Join(pkiDir, "etcd-client.key")
	o.StateDir, o.VnestBinary, o.LocalPortRange = stateDir, super.binary, tenantPorts

	managers++
	logPath := filepath.Join(dir, fmt.Sprintf("manager-%d.log", managers))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintln(logFile, time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{Verbosity: 2})
	t.Logf("manager %d logs to %s", managers, logPath)
	ctx, cancel := context.WithCancel(klog.NewContext(context.WithoutCancel(t.Context()), logger))
	done := make(chan error, 1)
	go func() { done <- manager.Run(ctx, o) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
		logFile.Close()
	}
	t.Cleanup(stop)
	return &runningManager{stop: stop, stateDir: stateDir}
}

// createAndWait creates a VirtualCluster with the CLI code and waits for Running.
func createAndWait(t testing.TB, c client.Client, vc *v1alpha1.VirtualCluster) *v1alpha1.VirtualCluster {
	t.Helper()
	start := time.Now()
	if err := c.Create(t.Context(), vc); err != nil {
		t.Fatalf("creating %s: %v", vc.Name, err)
	}
	waitRunning(t, c, vc)
	t.Logf("virtual cluster %s running after %s", vc.Name, time.Since(start).Round(10*time.Millisecond))
	return vc
}

func waitRunning(t testing.TB, c client.Client, vc *v1alpha1.VirtualCluster) {
	t.Helper()
	var last *v1alpha1.VirtualCluster
	waitUntilMsg(t, 60*time.Second, func() string { return fmt.Sprintf("%s Running; last status %+v", vc.Name, last.Status) },
		func(ctx context.Context) (bool, error) {
			last = &v1alpha1.VirtualCluster{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(vc), last); err != nil {
				return false, err
			}
			return last.Status.Phase == v1alpha1.PhaseRunning && last.Status.ObservedGeneration == last.Generation, nil
		})
	*vc = *last
}

// tenantClient is a client of the tenant with the kubeconfig from the
// Secret, read the way `vnest kubeconfig` reads it.
func tenantClient(t testing.TB, c client.Client, vc *v1alpha1.VirtualCluster) (kubernetes.Interface, *rest.Config) {
	t.Helper()
	var out bytes.Buffer
	if err := tenantctl.Kubeconfig(t.Context(), c, tenantctl.KubeconfigOptions{Name: vc.Name, Namespace: vc.Namespace}, &out); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, cfg
}

// superEtcd is an admin client of the super cluster's etcd.
func superEtcd(t testing.TB) *clientv3.Client {
	t.Helper()
	dir := superCluster(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "pki", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return etcdClient(t, fmt.Sprintf("https://127.0.0.1:%d", super.port+1), read(superEtcdCA(t)+".crt"), read("etcd-client.crt"), read("etcd-client.key"))
}

// superEtcdCA is the base name of the CA of the super cluster's etcd in
// DIR/pki: etcd-ca when etcd has a CA of its own, else the cluster CA.
func superEtcdCA(t testing.TB) string {
	if _, err := os.Stat(filepath.Join(superCluster(t), "pki", "etcd-ca.crt")); err == nil {
		return "etcd-ca"
	}
	return "ca"
}

// etcdClient connects to endpoint with a client certificate.
func etcdClient(t testing.TB, endpoint string, ca, cert, key []byte) *clientv3.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("no CA certificate")
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// keysUnder counts the etcd keys below prefix + "/".
func keysUnder(t testing.TB, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	waitUntilMsg(t, timeout, func() string { return what }, cond)
}

func waitUntilMsg(t testing.TB, timeout time.Duration, what func() string, cond func(context.Context) (bool, error)) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		lastErr = err
		return ok, nil // errors are retried; the last one is reported
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what(), lastErr)
	}
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}

// findProcess is the process whose command line has arg: its pid and arguments.
func findProcess(arg string) (int, []string, error) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if err != nil || !slices.Contains(args, arg) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(dir))
		return pid, args, err
	}
	return 0, nil, fmt.Errorf("no process with %s", arg)
}
