package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// readyTimeout bounds the wait for the kubeconfig; a first start may import images.
	readyTimeout = 5 * time.Minute
	// stopTimeout is how long a SIGINT may take before the test gives up and kills the process.
	// The contract allows 60 s; the rest is slack for a loaded 2-core machine.
	stopTimeout = 90 * time.Second
	// kubectlTimeout bounds a single `vnest kubectl` call.
	kubectlTimeout = 2 * time.Minute
	// logTailLines is how much of the `vnest up` log a failed test prints.
	logTailLines = 100
	pollInterval = time.Second
)

// clusterOptions are the flags of one `vnest up` run.
type clusterOptions struct {
	nodes     string // --nodes
	nodeCount int    // --node-count; 0 leaves the flag out
	port      int    // --apiserver-port; the run uses port..port+12 and port+100..port+199 for tenants
	dataDir   string // --data-dir; "" means a fresh t.TempDir()
	// afterStop, if set, runs in the cleanup once the cluster has stopped, before the log is
	// printed, so its failures come with the log too.
	afterStop func(t *testing.T, dataDir string)
	// extraArgs are appended to the `vnest up` command line.
	extraArgs []string
}

// cluster is one running `vnest up` child process and a client for the super cluster it serves.
type cluster struct {
	dataDir    string
	kubeconfig string
	logPath    string
	client     kubernetes.Interface

	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd.Wait returns
	waitErr  error         // cmd.Wait's result; read only after exited is closed
	stopOnce sync.Once
}

// startCluster runs `vnest up` with opts and returns once the super cluster's kubeconfig exists,
// which by contract means the apiserver and all nodes are Ready. The cluster is stopped in
// t.Cleanup, which then runs opts.afterStop and prints the tail of the log if the test failed.
func startCluster(t *testing.T, opts clusterOptions) *cluster {
	t.Helper()
	dir := opts.dataDir
	if dir == "" {
		dir = t.TempDir()
	}
	c := &cluster{
		dataDir:    dir,
		kubeconfig: filepath.Join(dir, "super.kubeconfig"),
		exited:     make(chan struct{}),
	}
	// vnest removes a stale kubeconfig itself, but the test could see it before vnest does.
	if err := os.Remove(c.kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removing the kubeconfig of an earlier run: %v", err)
	}

	args := []string{"up", "--data-dir", dir, "--nodes", opts.nodes, "--apiserver-port", strconv.Itoa(opts.port)}
	if opts.nodeCount > 0 {
		args = append(args, "--node-count", strconv.Itoa(opts.nodeCount))
	}
	args = append(args, opts.extraArgs...)
	logFile := createLogFile(t, dir)
	c.logPath = logFile.Name()
	c.cmd = exec.Command(vnestBin, args...)
	c.cmd.Stdout = logFile
	c.cmd.Stderr = logFile
	err := c.cmd.Start()
	logFile.Close() // the child has its own copy
	if err != nil {
		t.Fatalf("starting vnest %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stop(t)
		if opts.afterStop != nil {
			opts.afterStop(t, c.dataDir)
		}
		if t.Failed() {
			c.dumpLog(t)
		}
	})
	t.Logf("Started vnest %s (pid %d), log in %s", strings.Join(args, " "), c.cmd.Process.Pid, c.logPath)

	c.waitForKubeconfig(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", c.kubeconfig, err)
	}
	cfg.Timeout = 30 * time.Second // a hung request must not outlive the wait around it
	cfg.QPS, cfg.Burst = 50, 100
	if c.client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatalf("building a client from %s: %v", c.kubeconfig, err)
	}
	return c
}

// createLogFile creates vnest-up.N.log in dir with the first free N, so a restart on the same
// data directory keeps the log of the earlier run.
func createLogFile(t *testing.T, dir string) *os.File {
	t.Helper()
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("vnest-up.%d.log", n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			t.Fatalf("creating the vnest up log: %v", err)
		}
		return f
	}
}

func (c *cluster) waitForKubeconfig(t *testing.T) {
	t.Helper()
	start := time.Now()
	err := poll(t.Context(), readyTimeout, func() (bool, error) {
		if c.hasExited() {
			return true, nil
		}
		_, err := os.Stat(c.kubeconfig)
		return err == nil, err
	})
	if c.hasExited() {
		t.Fatalf("vnest up exited before writing %s: %v", c.kubeconfig, c.waitErr)
	}
	if err != nil {
		t.Fatalf("waiting for %s: %v", c.kubeconfig, err)
	}
	t.Logf("Super cluster ready after %v", time.Since(start).Round(time.Second))
}

func (c *cluster) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGINT and expects `vnest up` to exit 0 within stopTimeout; after that it kills the
// process and fails the test. Only the first call does anything, so a test may stop its cluster
// early and leave the cleanup's call as a no-op. It is safe in t.Cleanup: it uses no t.Context().
func (c *cluster) stop(t *testing.T) {
	t.Helper()
	c.stopOnce.Do(func() {
		if c.hasExited() {
			t.Errorf("vnest up exited while the test still needed it: %v", c.waitErr)
			return
		}
		start := time.Now()
		if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Errorf("sending SIGINT to vnest up: %v", err)
		}
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-c.exited:
		case <-timer.C:
			t.Errorf("vnest up did not exit within %v of SIGINT; killing it", stopTimeout)
			_ = c.cmd.Process.Kill()
			<-c.exited
			return
		}
		if c.waitErr != nil {
			t.Errorf("vnest up did not exit cleanly after SIGINT: %v", c.waitErr)
			return
		}
		t.Logf("vnest up stopped in %v", time.Since(start).Round(time.Millisecond))
	})
}

// dumpLog prints the last logTailLines lines of this run's log.
func (c *cluster) dumpLog(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		t.Logf("reading the vnest up log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	t.Logf("Last %d lines of %s:\n%s", len(lines), c.logPath, strings.Join(lines, "\n"))
	// A component's failure names its log ("...; see DIR/logs/kubelet.log"), which goes with the
	// data directory when the test ends: show its end too.
	shown := map[string]bool{}
	for _, m := range seeLog.FindAllStringSubmatch(strings.Join(lines, "\n"), -1) {
		if shown[m[1]] {
			continue
		}
		shown[m[1]] = true
		if data, err := os.ReadFile(m[1]); err == nil {
			t.Logf("Last lines of %s:\n%s", m[1], lastLines(string(data), logTailLines))
		}
	}
}

// seeLog finds the log files vnest up's messages point at.
var seeLog = regexp.MustCompile(`see (/\S+\.log)`)

// kubectl runs `vnest kubectl --kubeconfig <super> args...` and returns its combined output.
func (c *cluster) kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	args = append([]string{"kubectl", "--kubeconfig", c.kubeconfig}, args...)
	out, err := exec.CommandContext(ctx, vnestBin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vnest %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// waitFor polls cond until it reports done and fails the test if that takes longer than timeout.
// what names the awaited state in the failure message.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	if err := poll(t.Context(), timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// poll calls cond every pollInterval until it returns done, timeout passes or ctx ends. An error
// from cond means "not yet" — a cluster at work answers with transient errors — and the last one
// is reported when time runs out.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		done, err := cond()
		if done {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("gave up after %v: %w", timeout, lastErr)
			}
			return fmt.Errorf("gave up after %v", timeout)
		case <-ticker.C:
		}
	}
}
