package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/testetcd"
)

// childArgsEnv makes the test binary run one tenant control plane instead
// of the tests: the flags of `vnest apiserver`, JSON encoded. It is how the
// tests and the benchmark get a control plane in a process of its own.
const childArgsEnv = "VNEST_APISERVER_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(runChild(args))
	}
	// kube-apiserver and kube-controller-manager log a lot at level 0; keep
	// it out of the test output but on disk for a failing run.
	logFile := filepath.Join(os.TempDir(), fmt.Sprintf("vnest-apiserver-test-%d.log", os.Getpid()))
	fs := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{
		"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL",
		"log_file": logFile, "one_output": "true",
	} {
		if err := fs.Set(name, value); err != nil {
			panic(err)
		}
	}
	fmt.Fprintf(os.Stderr, "component logs: %s\n", logFile)
	code := m.Run()
	klog.Flush()
	os.Exit(code)
}

// runChild is the main of a child process: `vnest apiserver` with args.
func runChild(argsJSON string) int {
	var args []string
	if err := json.Unmarshal([]byte(argsJSON), &args); err != nil {
		fmt.Fprintln(os.Stderr, "child args:", err)
		return 2
	}
	o := NewOptions()
	fs := pflag.NewFlagSet("apiserver", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "vnest apiserver:", err)
		return 1
	}
	return 0
}

// startEtcd runs an etcd member in this process for the duration of the test and returns its
// client URL.
func startEtcd(t testing.TB) string { return testetcd.Start(t) }

func freePort(t testing.TB) int { return testetcd.FreePort(t) }

// tenantArgs are the flags of a tenant on etcd under prefix, serving on a
// free loopback port.
func tenantArgs(t testing.TB, etcd, stateDir, prefix string) []string {
	return []string{
		"--state-dir=" + stateDir,
		"--etcd-servers=" + etcd,
		"--etcd-prefix=" + prefix,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(freePort(t)),
	}
}

// tenant is a control plane started by a test.
type tenant struct {
	stateDir string
	admin    *rest.Config
	stop     func() // stops it and waits; idempotent
}

// startTenant runs Run in this process with args and waits until it is ready.
func startTenant(t *testing.T, args []string) *tenant {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("apiserver", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Run(ctx, o) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned an error on stop: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Errorf("Run did not return within 2m of being stopped")
		}
	}
	t.Cleanup(stop)
	admin := waitForAdminKubeconfig(t, o.StateDir, done)
	t.Logf("tenant %s ready after %s", o.EtcdPrefix, time.Since(start).Round(time.Millisecond))
	return &tenant{stateDir: o.StateDir, admin: admin, stop: stop}
}

// startChildTenant runs the control plane as a child process and waits
// until it is ready: `vnestBinary apiserver ARGS`, or the test binary itself
// when vnestBinary is empty. The child is stopped with SIGTERM, and killed
// when the test process dies.
func startChildTenant(t testing.TB, vnestBinary string, args []string, stateDir string) (*tenant, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(vnestBinary, append([]string{"apiserver"}, args...)...)
	if vnestBinary == "" {
		data, err := json.Marshal(args)
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childArgsEnv+"="+string(data))
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "child.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Dies with the test process: a killed benchmark must not leave its tenant behind (whose
	// etcd, in the test process, is gone then, so that SIGTERM no longer stops it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logFile.Close() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("child control plane exited with %v; log: %s", err, logFile.Name())
			}
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			t.Errorf("child control plane did not exit within 2m of SIGTERM; log: %s", logFile.Name())
		}
	}
	t.Cleanup(stop)
	admin := waitForAdminKubeconfig(t, stateDir, done)
	return &tenant{stateDir: stateDir, admin: admin, stop: stop}, cmd
}

// waitForAdminKubeconfig waits until the control plane wrote its admin
// kubeconfig (its "ready" signal) or stopped.
func waitForAdminKubeconfig(t testing.TB, stateDir string, done <-chan error) *rest.Config {
	t.Helper()
	file := filepath.Join(stateDir, layout.AdminKubeconfigFile)
	var cfg *rest.Config
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("control plane stopped before it was ready: %v", err)
		default:
		}
		if _, err := os.Stat(file); err != nil {
			return false, nil
		}
		var err error
		cfg, err = clientcmd.BuildConfigFromFlags("", file)
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", file, err)
	}
	return cfg
}

func clientFor(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond until it is true, fails the test after timeout.
func eventually(t testing.TB, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s (last error: %v)", what, timeout, errors.Join(err, last))
	}
}
