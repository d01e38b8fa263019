package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// podProxyPort is the base port of TestTenantPodSubresources; the syncer's kubelet proxy is
// the 13th port of the block (internal/supercluster/ports.go).
const (
	podProxyPort      = 17903
	kubeletProxyPort  = podProxyPort + 12
	counterContainer  = "counter"
	webContainer      = "web"
	subresourcesPod   = "duo"
	tenantViewer      = "e2e-viewer"
	streamWaitTimeout = 45 * time.Second
)

// TestTenantPodSubresources runs real nodes, the demo tenant and the syncer with its kubelet
// proxy, and uses plain kubectl with the tenant's kubeconfig on a two-container tenant pod:
// logs with -c, --tail, --timestamps, --since, -f and --previous (after a container restart),
// exec with stdin, attach, port-forward to httpd, and a user bound to `view` only, who may read
// logs but not exec. The demo tenant's control plane is a local process; a second tenant, run
// as a pod by the cluster provisioner, gets logs and exec too.
func TestTenantPodSubresources(t *testing.T) {
	requireRoot(t)
	c := startCluster(t, clusterOptions{nodes: "real", port: podProxyPort})
	tenant, kubeconfig := waitForDemoTenant(t, c)
	ctx := t.Context()
	waitFor(t, "the tenant's default service account", time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})

	// counter counts until /tmp/stop exists, then fails (and is restarted); each run starts
	// with a line naming itself. web serves a page on 8080.
	counter := busyboxContainer(`echo "boot $(cat /proc/sys/kernel/random/uuid)"; i=0; ` +
		`while [ ! -f /tmp/stop ]; do echo "tick $i"; i=$((i+1)); sleep 1; done; echo stopping; exit 1`)
	counter.Name = counterContainer
	web := busyboxContainer("mkdir -p /tmp/www && echo hello-from-tenant > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www")
	web.Name = webContainer
	// web also mounts the downward API files of the pod's labels, annotations and uid.
	web.VolumeMounts = []corev1.VolumeMount{{Name: "podinfo", MountPath: "/etc/podinfo"}}
	field := func(path string) *corev1.ObjectFieldSelector { return &corev1.ObjectFieldSelector{FieldPath: path} }
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: subresourcesPod,
			Labels: map[string]string{"app": "duo"}, Annotations: map[string]string{"note": `says "hi"`}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{counter, web},
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Volumes: []corev1.Volume{{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: field("metadata.labels")},
					{Path: "annotations", FieldRef: field("metadata.annotations")},
					{Path: "uid", FieldRef: field("metadata.uid")},
				},
			}}}},
		},
	}
	if _, err := tenant.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the tenant pod: %v", err)
	}
	waitFor(t, "the tenant pod Running with both containers ready", 2*time.Minute, func() (bool, error) {
		p, err := tenant.CoreV1().Pods("default").Get(ctx, subresourcesPod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
		}
		return p.Status.Phase == corev1.PodRunning && ready == 2, fmt.Errorf("phase %s, %d ready containers", p.Status.Phase, ready)
	})
	checkVirtualNodeKubelet(t, tenant)
	start := time.Now()

	kubectl := func(args ...string) string {
		t.Helper()
		out, err := tenantKubectl(t, kubeconfig, args...)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return out
	}

	// Downward API files show the tenant pod's labels, annotations and uid, not the super pod's.
	tp, err := tenant.CoreV1().Pods("default").Get(ctx, subresourcesPod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"labels": downwardMap(tp.Labels), "annotations": downwardMap(tp.Annotations), "uid": string(tp.UID)} {
		if got := kubectl("exec", subresourcesPod, "-c", webContainer, "--", "cat", "/etc/podinfo/"+file); got != want {
			t.Errorf("downward API file %s = %q, want the tenant pod's %q", file, got, want)
		}
	}

	// logs: -c, --tail, --timestamps, --since.
	var firstBoot string
	waitFor(t, "three ticks in the counter's log", time.Minute, func() (bool, error) {
		out, err := tenantKubectl(t, kubeconfig, "logs", subresourcesPod, "-c", counterContainer)
		if err != nil {
			return false, fmt.Errorf("%w: %s", err, out)
		}
		firstBoot, _, _ = strings.Cut(out, "\n")
		return strings.Contains(out, "tick 2\n"), fmt.Errorf("log so far: %q", out)
	})
	if !strings.HasPrefix(firstBoot, "boot ") {
		t.Fatalf("the counter's log starts with %q, want its boot line", firstBoot)
	}
	tail := strings.Split(strings.TrimRight(kubectl("logs", subresourcesPod, "-c", counterContainer, "--tail=2"), "\n"), "\n")
	if len(tail) != 2 || !strings.HasPrefix(tail[0], "tick ") || !strings.HasPrefix(tail[1], "tick ") {
		t.Errorf("logs --tail=2: %q, want two tick lines", tail)
	}
	stamped := kubectl("logs", subresourcesPod, "-c", counterContainer, "--tail=1", "--timestamps")
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z tick \d+\n$`).MatchString(stamped) {
		t.Errorf("logs --tail=1 --timestamps: %q, want one timestamped tick", stamped)
	}
	if out := kubectl("logs", subresourcesPod, "-c", counterContainer, "--since=1h"); !strings.HasPrefix(out, firstBoot+"\n") {
		t.Errorf("logs --since=1h does not start with the boot line %q: %q", firstBoot, firstLines(out))
	}
	if out := kubectl("logs", subresourcesPod, "-c", webContainer); strings.Contains(out, "tick") {
		t.Errorf("logs -c %s shows the other container's log: %q", webContainer, firstLines(out))
	}

	// logs -f streams: a tick newer than any seen before arrives on the open stream.
	last := lastTick(t, kubectl("logs", subresourcesPod, "-c", counterContainer, "--tail=1"))
	follow := startKubectl(t, kubeconfig, "logs", "-f", subresourcesPod, "-c", counterContainer, "--tail=1")
	follow.waitLine(t, fmt.Sprintf("a tick after %d on logs -f", last), func(line string) bool {
		n, ok := tickOf(line)
		return ok && n > last+1
	})
	follow.stop()

	// attach: the running container's output arrives on the attached stream.
	attach := startKubectl(t, kubeconfig, "attach", subresourcesPod, "-c", counterContainer)
	attach.waitLine(t, "a tick on kubectl attach", func(line string) bool { _, ok := tickOf(line); return ok })
	attach.stop()

	// exec with stdin.
	if out, err := kubectlStdin(t, kubeconfig, "hi\n", "exec", "-i", subresourcesPod, "-c", counterContainer, "--", "cat"); err != nil || out != "hi\n" {
		t.Errorf("echo hi | kubectl exec -i %s -- cat: %q, %v", subresourcesPod, out, err)
	}

	// port-forward to httpd, and a GET through it.
	forward := startKubectl(t, kubeconfig, "port-forward", "pod/"+subresourcesPod, ":8080")
	line := forward.waitLine(t, "kubectl port-forward to listen", func(line string) bool {
		return strings.HasPrefix(line, "Forwarding from 127.0.0.1:")
	})
	local := strings.Fields(strings.TrimPrefix(line, "Forwarding from "))[0]
	if body, err := httpGet(ctx, "http://"+local+"/"); err != nil || body != "hello-from-tenant\n" {
		t.Errorf("GET through kubectl port-forward: %q, %v\nkubectl said: %s", body, err, forward.transcript())
	}
	forward.stop()

	// RBAC of the tenant decides: a user bound to view reads logs, but may not exec.
	bindView(t, tenant)
	if out, err := tenantKubectl(t, kubeconfig, "--as="+tenantViewer, "logs", subresourcesPod, "-c", counterContainer, "--tail=1"); err != nil || !strings.HasPrefix(out, "tick ") {
		t.Errorf("a viewer's kubectl logs: %q, %v", out, err)
	}
	out, err := tenantKubectl(t, kubeconfig, "--as="+tenantViewer, "exec", subresourcesPod, "-c", counterContainer, "--", "true")
	// kubectl says "unable to upgrade connection: pods "duo" is forbidden: User ... cannot
	// create resource "pods/exec" ...".
	if err == nil || !strings.Contains(out, "forbidden") || !strings.Contains(out, `"pods/exec"`) {
		t.Errorf("a viewer's kubectl exec: %q, %v; want Forbidden on pods/exec", out, err)
	}

	// logs --previous after a restart shows the run before.
	kubectl("exec", subresourcesPod, "-c", counterContainer, "--", "touch", "/tmp/stop")
	waitFor(t, "the counter container to restart", 2*time.Minute, func() (bool, error) {
		p, err := tenant.CoreV1().Pods("default").Get(ctx, subresourcesPod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == counterContainer {
				return cs.RestartCount >= 1 && cs.State.Running != nil, fmt.Errorf("restarts %d, state %+v", cs.RestartCount, cs.State)
			}
		}
		return false, fmt.Errorf("no status of %s", counterContainer)
	})
	previous := kubectl("logs", subresourcesPod, "-c", counterContainer, "--previous")
	if !strings.HasPrefix(previous, firstBoot+"\n") || !strings.HasSuffix(previous, "stopping\n") {
		t.Errorf("logs --previous: %q, want the first run (%s … stopping)", firstLines(previous), firstBoot)
	}
	if current := kubectl("logs", subresourcesPod, "-c", counterContainer); strings.Contains(current, firstBoot) {
		t.Errorf("logs after the restart still show the first run: %q", firstLines(current))
	}

	t.Logf("Demo tenant: logs, exec, attach, port-forward and RBAC checked in %v", time.Since(start).Round(time.Second))

	checkClusterProvisionedTenant(t, c)
}

// checkClusterProvisionedTenant: a tenant whose control plane runs as a pod (cluster
// provisioner) reaches the kubelet proxy too, from the pod network.
func checkClusterProvisionedTenant(t *testing.T, c *cluster) {
	t.Helper()
	vnest := func(timeout time.Duration, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		args = append(args, "--kubeconfig", c.kubeconfig)
		if out, err := exec.CommandContext(ctx, vnestBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("vnest %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	start := time.Now()
	vnest(4*time.Minute, "create", "pod-cp", "--provisioner", "cluster", "--wait", "--timeout", "3m")
	kubeconfig := filepath.Join(t.TempDir(), "pod-cp.kubeconfig")
	vnest(time.Minute, "kubeconfig", "pod-cp", "-o", kubeconfig)
	waitFor(t, "the pod-cp tenant's default service account", time.Minute, func() (bool, error) {
		out, err := tenantKubectl(t, kubeconfig, "get", "serviceaccount", "default")
		return err == nil, fmt.Errorf("%v: %s", err, out)
	})
	if out, err := tenantKubectl(t, kubeconfig, "run", "hello", "--image="+busyboxImage, "--restart=Never", "--",
		"sh", "-c", "echo hello-from-pod-cp; exec sleep 3600"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	waitFor(t, "kubectl logs in the cluster-provisioned tenant", 2*time.Minute, func() (bool, error) {
		out, err := tenantKubectl(t, kubeconfig, "logs", "hello")
		return err == nil && out == "hello-from-pod-cp\n", fmt.Errorf("%v: %q", err, out)
	})
	if out, err := tenantKubectl(t, kubeconfig, "exec", "hello", "--", "echo", "exec-ok"); err != nil || out != "exec-ok\n" {
		t.Errorf("kubectl exec in the cluster-provisioned tenant: %q, %v", out, err)
	}
	t.Logf("Cluster-provisioned tenant: logs and exec work, %v after its creation", time.Since(start).Round(time.Second))
}

// checkVirtualNodeKubelet: the tenant's node points at the syncer's kubelet proxy.
func checkVirtualNodeKubelet(t *testing.T, tenant kubernetes.Interface) {
	t.Helper()
	p, err := tenant.CoreV1().Pods("default").Get(t.Context(), subresourcesPod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := tenant.CoreV1().Nodes().Get(t.Context(), p.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pod's virtual node: %v", err)
	}
	if port := n.Status.DaemonEndpoints.KubeletEndpoint.Port; port != kubeletProxyPort {
		t.Errorf("virtual node %s: kubelet port %d, want the kubelet proxy's %d", n.Name, port, kubeletProxyPort)
	}
	var internal []string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			internal = append(internal, a.Address)
		}
	}
	if len(internal) != 1 {
		t.Errorf("virtual node %s: InternalIPs %v, want exactly the kubelet proxy's", n.Name, internal)
	}
}

func tickOf(line string) (int, bool) {
	s, ok := strings.CutPrefix(strings.TrimSpace(line), "tick ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func lastTick(t *testing.T, out string) int {
	t.Helper()
	n, ok := tickOf(out)
	if !ok {
		t.Fatalf("not a tick line: %q", out)
	}
	return n
}

func firstLines(s string) string {
	lines := strings.SplitN(s, "\n", 6)
	if len(lines) > 5 {
		lines = append(lines[:5], "…")
	}
	return strings.Join(lines, "\n")
}

// bindView binds the ClusterRole view to the user tenantViewer in the tenant's default namespace.
func bindView(t *testing.T, tenant kubernetes.Interface) {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tenantViewer},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: tenantViewer}},
	}
	if _, err := tenant.RbacV1().RoleBindings("default").Create(t.Context(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("binding view to %s: %v", tenantViewer, err)
	}
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return string(body), err
}

// kubectlStdin runs `vnest kubectl --kubeconfig <tenant> args...` with stdin and returns its
// standard output (standard error goes into the error).
func kubectlStdin(t *testing.T, kubeconfig, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vnestBin, append([]string{"kubectl", "--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("vnest kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// kubectlStream is a long-running `vnest kubectl` (logs -f, attach, port-forward) whose output
// lines the test waits for.
type kubectlStream struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}

	mu  sync.Mutex
	out strings.Builder
}

// startKubectl starts `vnest kubectl --kubeconfig <tenant> args...`; it is killed by stop or
// at the end of the test.
func startKubectl(t *testing.T, kubeconfig string, args ...string) *kubectlStream {
	t.Helper()
	k := &kubectlStream{lines: make(chan string, 1024), done: make(chan struct{})}
	k.cmd = exec.CommandContext(t.Context(), vnestBin, append([]string{"kubectl", "--kubeconfig", kubeconfig}, args...)...)
	pr, pw := io.Pipe()
	k.cmd.Stdout, k.cmd.Stderr = pw, pw
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("starting kubectl %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		_ = k.cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(k.done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			k.mu.Lock()
			k.out.WriteString(sc.Text() + "\n")
			k.mu.Unlock()
			select {
			case k.lines <- sc.Text():
			default: // nobody waits; the transcript has it
			}
		}
	}()
	t.Cleanup(k.stop)
	return k
}

// waitLine returns the first output line match accepts, failing the test after
// streamWaitTimeout or when kubectl exits first.
func (k *kubectlStream) waitLine(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(streamWaitTimeout)
	for {
		select {
		case line := <-k.lines:
			if match(line) {
				return line
			}
		case <-k.done:
			for len(k.lines) > 0 { // what it printed before it ended
				if line := <-k.lines; match(line) {
					return line
				}
			}
			t.Fatalf("waiting for %s: kubectl %s ended; it said:\n%s", what, k.args(), k.transcript())
		case <-timeout:
			t.Fatalf("waiting for %s: nothing after %v; kubectl %s said:\n%s", what, streamWaitTimeout, k.args(), k.transcript())
		}
	}
}

func (k *kubectlStream) args() string { return strings.Join(k.cmd.Args[4:], " ") } // after kubectl --kubeconfig FILE

func (k *kubectlStream) transcript() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.out.String()
}

func (k *kubectlStream) stop() {
	if k.cmd.Process != nil {
		_ = k.cmd.Process.Kill()
	}
	<-k.done
}

// downwardMap renders m as the kubelet renders a downward API file of labels or annotations.
func downwardMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = fmt.Sprintf("%s=%q", k, m[k])
	}
	return strings.Join(lines, "\n")
}
