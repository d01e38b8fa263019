package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRealNode runs a one-node cluster with a real kubelet and containerd, checks that pods run,
// log, exec and reach each other through a Service, and that stopping leaves the host clean.
func TestRealNode(t *testing.T) {
	requireRoot(t)
	c := startCluster(t, clusterOptions{nodes: "real", port: 16443, afterStop: checkHostClean})

	node := requireReadyNodes(t, c, 1)[0]
	if host, err := os.Hostname(); err == nil && node.Name != strings.ToLower(host) {
		t.Errorf("node is named %q, want the host name %q", node.Name, strings.ToLower(host))
	}

	const ns = "e2e"
	createNamespace(t, c, ns)
	createPod(t, c, busyboxPod(ns, "hello", "echo hello-from-vnest; sleep 3600"))
	waitForPodPhase(t, c, ns, "hello", 3*time.Minute, corev1.PodRunning)

	waitForKubectl(t, c, "hello's log", func(out string) bool {
		return strings.Contains(out, "hello-from-vnest")
	}, "-n", ns, "logs", "hello")
	waitForKubectl(t, c, "exec in hello", func(out string) bool {
		return slices.Contains(strings.Split(strings.TrimSpace(out), "\n"), "42")
	}, "-n", ns, "exec", "hello", "--", "sh", "-c", "echo $((6*7))")

	checkServiceReachable(t, c, ns)
}

// checkHostClean checks that a stopped real-node cluster left no processes, mounts or
// kube-proxy rules behind. It runs in t.Cleanup, where t.Context() is already canceled, and
// also when the test failed early: a failed test must not leave the host dirty either.
func checkHostClean(t *testing.T, dir string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	checkNoProcessesMention(ctx, t, dir)
	// containerd shims name the socket under /run/vnest, not the data dir.
	checkNoProcessesMention(ctx, t, "/run/vnest")
	checkNoMountsUnder(t, dir)
	checkNoPodNetns(t)
	checkNoKubeServicesChain(ctx, t)
}

// requireRoot skips the test without root, except in CI, which must exercise real nodes.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("real nodes need root, and CI=true: CI must run the e2e tests as root")
	}
	t.Skip("real nodes need root; skipped (with CI=true this is a failure)")
}

// waitForKubectl retries a kubectl command until ok accepts its output; the first log lines and
// the exec stream can lag a moment behind the pod turning Running.
func waitForKubectl(t *testing.T, c *cluster, what string, ok func(out string) bool, args ...string) {
	t.Helper()
	waitFor(t, what, time.Minute, func() (bool, error) {
		out, err := c.kubectl(t, args...)
		if err != nil {
			return false, fmt.Errorf("%w: %s", err, out)
		}
		if !ok(out) {
			return false, fmt.Errorf("unexpected output %q", out)
		}
		return true, nil
	})
}

// checkServiceReachable serves a page from an httpd pod behind a ClusterIP Service and fetches it
// from a second pod through the ClusterIP, which exercises CNI, kube-proxy and the service IP
// allocator. The super cluster has no DNS, hence the IP.
func checkServiceReachable(t *testing.T, c *cluster, ns string) {
	t.Helper()
	createPod(t, c, busyboxPod(ns, "web", "mkdir -p /www && echo vnest-ok > /www/index.html && httpd -f -p 8080 -h /www"))
	svc, err := c.client.CoreV1().Services(ns).Create(t.Context(), clusterIPService(ns, "web", "web", 80, 8080), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating service web: %v", err)
	}
	waitForPodPhase(t, c, ns, "web", 3*time.Minute, corev1.PodRunning)

	// Endpoints and proxy rules follow the pod asynchronously, so the client retries for 60 s.
	script := fmt.Sprintf(`end=$(($(date +%%s)+60))
until timeout 5 wget -qO- http://%s/; do
  [ "$(date +%%s)" -lt "$end" ] || exit 1
  sleep 1
done`, svc.Spec.ClusterIP)
	client := busyboxPod(ns, "client", script)
	client.Spec.RestartPolicy = corev1.RestartPolicyNever
	createPod(t, c, client)
	pod := waitForPodPhase(t, c, ns, "client", 3*time.Minute, corev1.PodSucceeded, corev1.PodFailed)

	out, err := c.kubectl(t, "-n", ns, "logs", "client")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if pod.Status.Phase != corev1.PodSucceeded || !strings.Contains(out, "vnest-ok") {
		t.Errorf("fetching http://%s/ (service web) from pod client: pod %s, output %q, want it to contain %q",
			svc.Spec.ClusterIP, podSummary(pod), out, "vnest-ok")
	}
}

// checkNoProcessesMention fails if a process still names dir on its command line: every
// component `vnest up` starts (kubelet, containerd and its shims, kube-proxy, …) does. Leftovers
// are killed afterwards so they cannot disturb the next test.
func checkNoProcessesMention(ctx context.Context, t *testing.T, dir string) {
	t.Helper()
	var left map[int]string
	err := poll(ctx, 5*time.Second, func() (bool, error) {
		left = processesMentioning(dir)
		return len(left) == 0, nil
	})
	if err == nil {
		return
	}
	for pid, cmdline := range left {
		t.Errorf("process %d survived vnest up: %s", pid, cmdline)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesMentioning maps the pid of every other process whose command line contains dir to
// that command line.
func processesMentioning(dir string) map[int]string {
	entries, _ := os.ReadDir("/proc")
	forms := dirForms(dir)
	found := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil { // the process is gone
			continue
		}
		cmdline := strings.TrimSpace(string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '})))
		if slices.ContainsFunc(forms, func(d string) bool { return strings.Contains(cmdline, d) }) {
			found[pid] = cmdline
		}
	}
	return found
}

// checkNoMountsUnder fails if anything is still mounted at or below dir. Leftovers are detached,
// deepest first, so that removing the test's temporary directory cannot reach into a mounted
// file system.
func checkNoMountsUnder(t *testing.T, dir string) {
	t.Helper()
	mounts, err := mountPoints()
	if err != nil {
		t.Errorf("reading mounts: %v", err)
		return
	}
	forms := dirForms(dir)
	var left []string
	for _, m := range mounts {
		if slices.ContainsFunc(forms, func(d string) bool { return m == d || strings.HasPrefix(m, d+"/") }) {
			left = append(left, m)
		}
	}
	slices.SortFunc(left, func(a, b string) int { return len(b) - len(a) })
	for _, m := range left {
		t.Errorf("still mounted after vnest up stopped: %s", m)
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// mountPoints lists the mount points of this process's mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		// Fields: mount ID, parent ID, major:minor, root, mount point, …
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			return nil, fmt.Errorf("malformed mountinfo line %q", scanner.Text())
		}
		points = append(points, unescapeMountinfo(fields[4]))
	}
	return points, scanner.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space, …) in a mountinfo path.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkNoPodNetns fails if a pod network namespace (bind-mounted by containerd at
// /run/netns/cni-*) is still mounted; leftovers are detached.
func checkNoPodNetns(t *testing.T) {
	t.Helper()
	mounts, err := mountPoints()
	if err != nil {
		t.Errorf("reading mounts: %v", err)
		return
	}
	for _, m := range mounts {
		if strings.HasPrefix(m, "/run/netns/cni-") || strings.HasPrefix(m, "/var/run/netns/cni-") {
			t.Errorf("pod network namespace still mounted after vnest up stopped: %s", m)
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
}

// checkNoKubeServicesChain fails if kube-proxy's KUBE-SERVICES chain is still in the nat table.
func checkNoKubeServicesChain(ctx context.Context, t *testing.T) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "iptables", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		t.Errorf("iptables -t nat -S: %v: %s", err, out)
		return
	}
	for line := range strings.Lines(string(out)) {
		if strings.TrimSpace(line) == "-N KUBE-SERVICES" {
			t.Errorf("the KUBE-SERVICES chain is still in the nat table after vnest up stopped")
		}
	}
}

// dirForms are dir as given and with symlinks resolved, since either may appear on the host.
func dirForms(dir string) []string {
	forms := []string{filepath.Clean(dir)}
	if resolved, err := filepath.EvalSymlinks(dir); err == nil && resolved != forms[0] {
		forms = append(forms, resolved)
	}
	return forms
}
