package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// Ownership keys (internal/ownership); spelled out because e2e must not import production code.
const (
	labelClusterKey      = "tenancy.vnest.dev/cluster-key"
	labelTenantNamespace = "tenancy.vnest.dev/tenant-namespace"
	annotationTenantUID  = "tenancy.vnest.dev/tenant-uid"
)

// TestSyncer runs real nodes, the demo tenant and the syncer, and checks the acceptance:
// a tenant Deployment really runs (pods Running with IPs in the tenant, a virtual node), the
// super pods live in <clusterKey>-default with ownership labels, a super pod deleted by hand is
// replaced through the tenant's ReplicaSet, pods get the tenant's token, CA
// and apiserver address (checkInClusterClient), privileged and hostPath pods of
// the (baseline) tenant are refused with a reason, a foreign super object with a tenant object's
// name is never modified, and scaling to 0 removes the super pods and the virtual node.
func TestSyncer(t *testing.T) {
	requireRoot(t)
	// The test runs the syncer itself (vnest up --no-syncer) so that it can kill it mid-rollout;
	// `vnest up` treats a dying child as fatal.
	c := startCluster(t, clusterOptions{nodes: "real", port: 16703, extraArgs: []string{"--no-syncer"}})
	tenant, tenantKubeconfig := waitForDemoTenant(t, c)
	syncer := startSyncer(t, c)
	key := demoClusterKey(t, c)
	superNS := key + "-default"
	ctx := t.Context()

	start := time.Now()
	out, err := tenantKubectl(t, tenantKubeconfig, "create", "deployment", "web", "--image="+busyboxImage, "--replicas=2", "--", "httpd", "-f", "-p", "8080")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var pods []corev1.Pod
	waitFor(t, "2 Running tenant pods with IPs", 60*time.Second, func() (bool, error) {
		list, err := tenant.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		pods = list.Items
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.Spec.NodeName != "" {
				running++
			}
		}
		return running == 2 && len(pods) == 2, fmt.Errorf("%d pods, %d running with an IP and a node", len(pods), running)
	})
	t.Logf("Both tenant pods Running %v after kubectl create deployment", time.Since(start).Round(100*time.Millisecond))

	node, err := tenant.CoreV1().Nodes().Get(ctx, pods[0].Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the tenant pod's node %s is not in the tenant: %v", pods[0].Spec.NodeName, err)
	}
	if !nodeReady(node) {
		t.Errorf("virtual node %s is not Ready: %+v", node.Name, node.Status.Conditions)
	}

	for _, p := range pods {
		sp, err := c.client.CoreV1().Pods(superNS).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("super pod %s/%s: %v", superNS, p.Name, err)
			continue
		}
		if sp.Labels[labelClusterKey] != key || sp.Labels[labelTenantNamespace] != "default" || sp.Annotations[annotationTenantUID] != string(p.UID) {
			t.Errorf("super pod %s/%s lacks its ownership: labels %v, annotations %v", superNS, sp.Name, sp.Labels, sp.Annotations)
		}
		if sp.Status.PodIP != p.Status.PodIP || sp.Spec.NodeName != p.Spec.NodeName {
			t.Errorf("tenant pod %s shows IP %s on %s, the super pod %s on %s", p.Name, p.Status.PodIP, p.Spec.NodeName, sp.Status.PodIP, sp.Spec.NodeName)
		}
	}

	waitFor(t, "super events about the pod in the tenant", 30*time.Second, func() (bool, error) {
		evs, err := tenant.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pods[0].Name})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "Started" && ev.InvolvedObject.UID == pods[0].UID {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none Started", len(evs.Items))
	})

	checkSuperPodDeletedByHand(t, c, tenant, superNS)

	checkPodSecurityRefusals(t, c, tenant, superNS)

	checkInClusterClient(t, c, tenant, tenantKubeconfig, superNS)

	checkForeignServiceUntouched(t, c, tenant, superNS)

	checkRestartConverges(t, c, tenant, tenantKubeconfig, superNS, syncer)

	if out, err := tenantKubectl(t, tenantKubeconfig, "scale", "deployment", "web", "--replicas=0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// httpd ignores SIGTERM: the pods take their 30 s grace period.
	waitFor(t, "the super pods to go", 2*time.Minute, func() (bool, error) {
		list, err := c.client.CoreV1().Pods(superNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		return len(list.Items) == 0, fmt.Errorf("%d super pods left", len(list.Items))
	})
	waitFor(t, "the tenant pods and the virtual node to go", time.Minute, func() (bool, error) {
		list, err := tenant.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		nodes, err := tenant.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(list.Items) == 0 && len(nodes.Items) == 0, fmt.Errorf("%d tenant pods, %d nodes left", len(list.Items), len(nodes.Items))
	})
}

// checkSuperPodDeletedByHand deletes one super pod of deployment web as an operator could: the
// tenant pod goes (the syncer does not recreate a pod that ran) and the tenant's ReplicaSet
// replaces it, so web is back to 2 Running pods under a new name.
func checkSuperPodDeletedByHand(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string) {
	t.Helper()
	ctx := t.Context()
	list, err := c.client.CoreV1().Pods(superNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(list.Items) == 0 {
		t.Fatalf("super pods of web: %v (%d)", err, len(list.Items))
	}
	victim := list.Items[0]
	if err := c.client.CoreV1().Pods(superNS).Delete(ctx, victim.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tenant pod of a deleted super pod to be replaced", 90*time.Second, func() (bool, error) {
		pods, err := tenant.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Name == victim.Name {
				return false, fmt.Errorf("tenant pod %s is still there (%s)", p.Name, p.Status.Phase)
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 2, fmt.Errorf("%d pods, %d Running", len(pods.Items), running)
	})
}

// checkRestartConverges kills the syncer in the middle of a scale-up and starts it again: both
// sides must converge to the same pods, with no duplicate and no orphan.
func checkRestartConverges(t *testing.T, c *cluster, tenant kubernetes.Interface, kubeconfig, superNS string, old *syncerProcess) {
	t.Helper()
	const replicas = 12
	killMidRollout(t, c, kubeconfig, superNS, old, replicas, 2) // the 2 pods of before: at once
	waitForConvergence(t, c, tenant, superNS, replicas, 2*time.Minute)
}

// killMidRollout scales deployment web of the tenant to replicas, kills the syncer with
// SIGKILL once at least atSuper super pods of web exist (some synced, some not), and starts a
// new one.
func killMidRollout(t *testing.T, c *cluster, kubeconfig, superNS string, old *syncerProcess, replicas, atSuper int) *syncerProcess {
	t.Helper()
	if out, err := tenantKubectl(t, kubeconfig, "scale", "deployment", "web", fmt.Sprintf("--replicas=%d", replicas)); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	n := 0
	waitFor(t, fmt.Sprintf("%d super pods before killing the syncer", atSuper), 3*time.Minute, func() (bool, error) {
		sp, err := c.client.CoreV1().Pods(superNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		n = len(sp.Items)
		return n >= atSuper, fmt.Errorf("%d super pods", n)
	})
	old.kill(t)
	t.Logf("Killed the syncer with %d of %d super pods created", n, replicas)
	return startSyncer(t, c)
}

// waitForConvergence waits until the tenant has exactly replicas Running pods of web and the
// super namespace exactly one super pod for each: no duplicate, no orphan, nothing lost.
func waitForConvergence(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string, replicas int, timeout time.Duration) {
	t.Helper()
	ctx := t.Context()
	waitFor(t, "tenant and super pods to converge after a syncer restart", timeout, func() (bool, error) {
		tp, err := tenant.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		sp, err := c.client.CoreV1().Pods(superNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		want := map[string]string{}
		for _, p := range tp.Items {
			if p.Status.Phase != corev1.PodRunning {
				return false, fmt.Errorf("tenant pod %s is %s", p.Name, p.Status.Phase)
			}
			want[p.Name] = string(p.UID)
		}
		for _, p := range sp.Items {
			if want[p.Name] != p.Annotations[annotationTenantUID] {
				return false, fmt.Errorf("super pod %s belongs to no current tenant pod", p.Name)
			}
		}
		if len(tp.Items) != replicas || len(sp.Items) != replicas {
			return false, fmt.Errorf("%d tenant pods, %d super pods, want %d each", len(tp.Items), len(sp.Items), replicas)
		}
		return true, nil
	})
}

// checkForeignServiceUntouched puts a Service without ownership into the tenant's super
// namespace, creates a tenant Service of the same name, and checks the super one is never
// modified and the tenant one gets an event saying why.
func checkForeignServiceUntouched(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string) {
	t.Helper()
	ctx := t.Context()
	svc := func(ns string, port int32) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foreign"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "foreign"},
				Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(port)}}},
		}
	}
	foreign, err := c.client.CoreV1().Services(superNS).Create(ctx, svc(superNS, 81), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the foreign super Service: %v", err)
	}
	if _, err := tenant.CoreV1().Services("default").Create(ctx, svc("default", 82), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the tenant Service: %v", err)
	}
	waitFor(t, "the SuperObjectNotOwned event on the tenant Service", 30*time.Second, func() (bool, error) {
		evs, err := tenant.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=foreign,reason=SuperObjectNotOwned"})
		if err != nil {
			return false, err
		}
		return len(evs.Items) > 0, nil
	})
	got, err := c.client.CoreV1().Services(superNS).Get(ctx, "foreign", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the foreign super Service: %v", err)
	}
	if got.ResourceVersion != foreign.ResourceVersion || got.UID != foreign.UID {
		t.Errorf("the foreign super Service was modified: resourceVersion %s → %s, labels %v", foreign.ResourceVersion, got.ResourceVersion, got.Labels)
	}
	if err := tenant.CoreV1().Services("default").Delete(ctx, "foreign", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting the tenant Service: %v", err)
	}
	time.Sleep(2 * time.Second) // a delete of a tenant object must not reach the foreign one either
	if _, err := c.client.CoreV1().Services(superNS).Get(ctx, "foreign", metav1.GetOptions{}); err != nil {
		t.Errorf("the foreign super Service is gone after the tenant Service was deleted: %v", err)
	}
}

// waitForDemoTenant waits for DIR/demo.kubeconfig and returns a client for it and its path.
func waitForDemoTenant(t *testing.T, c *cluster) (kubernetes.Interface, string) {
	t.Helper()
	file := filepath.Join(c.dataDir, "demo.kubeconfig")
	waitFor(t, "demo.kubeconfig", 3*time.Minute, func() (bool, error) {
		_, err := os.Stat(file)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", file)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 30 * time.Second
	client := kubernetes.NewForConfigOrDie(cfg)
	waitForDefaultServiceAccount(t, client)
	return client, file
}

// demoClusterKey reads status.clusterKey of the VirtualCluster default/demo.
func demoClusterKey(t *testing.T, c *cluster) string {
	t.Helper()
	return tenantClusterKey(t, c, "demo")
}

// virtualClusters is a client of the super cluster's VirtualClusters in namespace default.
func virtualClusters(t *testing.T, c *cluster) dynamic.ResourceInterface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "tenancy.vnest.dev", Version: "v1alpha1", Resource: "virtualclusters"}
	return dynamic.NewForConfigOrDie(cfg).Resource(gvr).Namespace("default")
}

// virtualClusterField reads a string field of VirtualCluster default/name.
func virtualClusterField(t *testing.T, c *cluster, name string, fields ...string) (string, error) {
	t.Helper()
	vc, err := virtualClusters(t, c).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("getting VirtualCluster default/%s: %w", name, err)
	}
	v, _, err := unstructured.NestedString(vc.Object, fields...)
	return v, err
}

// tenantKubectl runs `vnest kubectl --kubeconfig <tenant> args...`.
func tenantKubectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubectlTimeout)
	defer cancel()
	args = append([]string{"kubectl", "--kubeconfig", kubeconfig}, args...)
	out, err := exec.CommandContext(ctx, vnestBin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vnest %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// syncerProcess is a `vnest syncer` child of the test.
type syncerProcess struct {
	cmd    *exec.Cmd
	done   chan error
	killed bool
}

// startSyncer runs `vnest syncer` against the cluster until the test ends (or kill); its log
// lands next to the `vnest up` log (syncer.N.log) and is printed when the test fails.
func startSyncer(t *testing.T, c *cluster) *syncerProcess {
	t.Helper()
	var logFile *os.File
	for n := 1; logFile == nil; n++ {
		f, err := os.OpenFile(filepath.Join(c.dataDir, fmt.Sprintf("syncer.%d.log", n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		logFile = f
	}
	logPath := logFile.Name()
	p := &syncerProcess{cmd: exec.Command(vnestBin, "syncer", "--kubeconfig", c.kubeconfig, "-v=2"), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	err := p.cmd.Start()
	logFile.Close()
	if err != nil {
		t.Fatalf("starting vnest syncer: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.killed && p.cmd.Process.Signal(os.Interrupt) == nil {
			select {
			case err := <-p.done:
				if err != nil {
					t.Errorf("vnest syncer did not exit cleanly: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("vnest syncer did not stop within 30s of SIGINT; killing it")
				_ = p.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			if len(lines) > logTailLines {
				lines = lines[len(lines)-logTailLines:]
			}
			t.Logf("Last lines of %s:\n%s", logPath, strings.Join(lines, "\n"))
		}
	})
	return p
}

// kill ends the syncer with SIGKILL, as a crash would.
func (p *syncerProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing vnest syncer: %v", err)
	}
	<-p.done
	p.killed = true
}
