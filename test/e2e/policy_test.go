package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// TestTenantQuotaAndNodeName checks the VirtualCluster policy parts that need no real node, on
// SIMULATED (kwok) nodes: with spec.policy.quota pods=2, a 3-replica Deployment gets two pods
// down and the third waits Pending with a condition and an event that name the quota; raising
// the quota lets it go down. A pod whose nodeName the tenant set itself goes to that node
// directly, unless the node is cordoned: then it waits, Pending, until it is uncordoned. Taints
// the tenant puts on a virtual Node act in the tenant: a new pod goes elsewhere, and a NoExecute
// taint evicts the pods there.
func TestTenantQuotaAndNodeName(t *testing.T) {
	c := startCluster(t, clusterOptions{nodes: "simulated", nodeCount: 2, port: 16903})
	tenant, kubeconfig := waitForDemoTenant(t, c)
	superNS := demoClusterKey(t, c) + "-default"
	ctx := t.Context()

	patchDemo(t, c, `{"spec":{"policy":{"quota":{"pods":"2"}}}}`)
	if out, err := tenantKubectl(t, kubeconfig, "create", "deployment", "web", "--image="+busyboxImage, "--replicas=3"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var waiting string
	waitFor(t, "2 Running pods and 1 refused for quota", 90*time.Second, func() (bool, error) {
		list, err := tenant.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		running, refused := 0, 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
			if c := scheduledFalse(&p); c != nil && c.Reason == "TenantQuotaExceeded" && strings.Contains(c.Message, "pods: requested 1, used 2, limited 2") {
				refused++
				waiting = p.Name
			}
		}
		return running == 2 && refused == 1, fmt.Errorf("%d pods, %d Running, %d refused for quota", len(list.Items), running, refused)
	})
	super, err := c.client.CoreV1().Pods(superNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(super.Items) != 2 {
		t.Errorf("%d super pods, want 2 (the quota)", len(super.Items))
	}
	requireEvent(t, tenant, waiting, "TenantQuotaExceeded")

	patchDemo(t, c, `{"spec":{"policy":{"quota":{"pods":"3"}}}}`)
	waitForTenantPodRunning(t, tenant, waiting, time.Minute)

	// A node the tenant names itself: a cordoned one makes the pod wait for the super scheduler
	// (a node affinity, Pending); one the policy allows gets the pod directly, as in any cluster.
	nodes := requireReadyNodes(t, c, 2)
	cordoned, target := nodes[0].Name, nodes[1].Name
	setUnschedulable(t, c, cordoned, true)
	patchDemo(t, c, `{"spec":{"policy":{"quota":{"pods":"5"}}}}`)
	waits := busyboxPod("default", "waits", "sleep 3600")
	waits.Spec.NodeName = cordoned
	pod := busyboxPod("default", "pinned", "sleep 3600")
	pod.Spec.NodeName = target
	for _, p := range []*corev1.Pod{waits, pod} {
		if _, err := tenant.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitForTenantPodRunning(t, tenant, "pinned", time.Minute)
	sp, err := c.client.CoreV1().Pods(superNS).Get(ctx, "pinned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Spec.NodeName != target || sp.Spec.Affinity != nil {
		t.Errorf("super pod on %q with affinity %+v; want it put on %q directly", sp.Spec.NodeName, sp.Spec.Affinity, target)
	}
	// The two pods are synced independently: "pinned" Running says nothing of "waits" yet.
	var sw *corev1.Pod
	waitFor(t, "the super pod for the cordoned node", 30*time.Second, func() (bool, error) {
		sw, err = c.client.CoreV1().Pods(superNS).Get(ctx, "waits", metav1.GetOptions{})
		return err == nil, err
	})
	if sw.Spec.NodeName != "" || sw.Spec.Affinity == nil || sw.Spec.Affinity.NodeAffinity == nil || sw.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Errorf("super pod for the cordoned node: nodeName %q, affinity %+v; want no nodeName and a required node affinity", sw.Spec.NodeName, sw.Spec.Affinity)
	}
	if tp, err := tenant.CoreV1().Pods("default").Get(ctx, "waits", metav1.GetOptions{}); err != nil || tp.Status.Phase != corev1.PodPending {
		t.Errorf("tenant pod for the cordoned node: %v, %v; want it Pending", tp.Status.Phase, err)
	}
	setUnschedulable(t, c, cordoned, false)
	waitForTenantPodRunning(t, tenant, "waits", time.Minute)

	checkTenantTaints(t, c, tenant, kubeconfig, superNS, target)
}

// checkTenantTaints: the tenant taints the virtual Node of node (kubectl taint node, which the
// super node never gets); a new pod that does not tolerate the taint runs elsewhere, one that
// needs that node waits until the taint is removed, and a NoExecute taint evicts pod "pinned"
// from node, in the tenant and the super cluster.
func checkTenantTaints(t *testing.T, c *cluster, tenant kubernetes.Interface, kubeconfig, superNS, node string) {
	t.Helper()
	ctx := t.Context()
	patchDemo(t, c, `{"spec":{"policy":{"quota":{"pods":"10"}}}}`)
	if out, err := tenantKubectl(t, kubeconfig, "taint", "node", node, "maintenance=soon:NoSchedule"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The syncer reads the taint from its informer on the tenant's Nodes; give it a moment.
	time.Sleep(2 * time.Second)
	if _, err := tenant.CoreV1().Pods("default").Create(ctx, busyboxPod("default", "avoids", "sleep 3600"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForTenantPodRunning(t, tenant, "avoids", time.Minute)
	if p, err := tenant.CoreV1().Pods("default").Get(ctx, "avoids", metav1.GetOptions{}); err != nil || p.Spec.NodeName == node {
		t.Errorf("pod avoids on node %q (%v); want it off %s, which the tenant tainted NoSchedule", p.Spec.NodeName, err, node)
	}
	if sn, err := c.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil || len(sn.Spec.Taints) != 0 {
		t.Errorf("super node %s taints %v (%v); want the tenant's taint kept from it", node, sn.Spec.Taints, err)
	}
	// A pod for that node alone waits Pending while the taint is there and runs once the tenant
	// removes it: the syncer creates its unscheduled super pod again (within a patrol period).
	waiter := busyboxPod("default", "waiter", "sleep 3600")
	waiter.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}
	if _, err := tenant.CoreV1().Pods("default").Create(ctx, waiter, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if p, err := tenant.CoreV1().Pods("default").Get(ctx, "waiter", metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodPending {
		t.Errorf("pod waiter for the tainted node: phase %s (%v); want Pending", p.Status.Phase, err)
	}
	if out, err := tenantKubectl(t, kubeconfig, "taint", "node", node, "maintenance=soon:NoSchedule-"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	waitForTenantPodRunning(t, tenant, "waiter", 2*time.Minute)

	if out, err := tenantKubectl(t, kubeconfig, "taint", "node", node, "maintenance=now:NoExecute"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	waitFor(t, "pod pinned evicted from the tainted node", 90*time.Second, func() (bool, error) {
		_, terr := tenant.CoreV1().Pods("default").Get(ctx, "pinned", metav1.GetOptions{})
		_, serr := c.client.CoreV1().Pods(superNS).Get(ctx, "pinned", metav1.GetOptions{})
		return apierrors.IsNotFound(terr) && apierrors.IsNotFound(serr), fmt.Errorf("tenant pod: %v; super pod: %v", terr, serr)
	})
}

// setUnschedulable cordons or uncordons super node name.
func setUnschedulable(t *testing.T, c *cluster, name string, on bool) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	if _, err := c.client.CoreV1().Nodes().Patch(t.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkPodSecurityRefusals: in a baseline tenant (the default) a privileged pod and a hostPath
// pod stay Pending in the tenant with a condition and an event that say why, and nothing of
// them reaches the super cluster.
func checkPodSecurityRefusals(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string) {
	t.Helper()
	ctx := t.Context()
	privileged := busyboxPod("default", "privileged", "sleep 3600")
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	hostPath := busyboxPod("default", "hostpath", "sleep 3600")
	hostPath.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	hostPath.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
	want := map[string]string{"privileged": "privileged", "hostpath": "hostPath volumes"}
	for _, p := range []*corev1.Pod{privileged, hostPath} {
		if _, err := tenant.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, what := range want {
		waitFor(t, "pod "+name+" refused for Pod Security", time.Minute, func() (bool, error) {
			p, err := tenant.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			c := scheduledFalse(p)
			if c == nil {
				return false, fmt.Errorf("phase %s, no PodScheduled=False condition", p.Status.Phase)
			}
			ok := c.Reason == "PodSecurityViolation" && strings.Contains(c.Message, `"baseline:latest"`) && strings.Contains(c.Message, what)
			return ok && p.Status.Phase == corev1.PodPending, fmt.Errorf("phase %s, condition %s: %s", p.Status.Phase, c.Reason, c.Message)
		})
		requireEvent(t, tenant, name, "PodSecurityViolation")
		if _, err := c.client.CoreV1().Pods(superNS).Get(ctx, name, metav1.GetOptions{}); err == nil {
			t.Errorf("refused pod %s exists in the super cluster", name)
		}
		if err := tenant.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Error(err)
		}
	}
}

// scheduledFalse returns the pod's PodScheduled condition if it is False.
func scheduledFalse(p *corev1.Pod) *corev1.PodCondition {
	for i, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// requireEvent waits for an event with reason about tenant pod default/name.
func requireEvent(t *testing.T, tenant kubernetes.Interface, name, reason string) {
	t.Helper()
	waitFor(t, reason+" event on pod "+name, 30*time.Second, func() (bool, error) {
		evs, err := tenant.CoreV1().Events("default").List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == reason && ev.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none %s", len(evs.Items), reason)
	})
}

func waitForTenantPodRunning(t *testing.T, tenant kubernetes.Interface, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, "tenant pod "+name+" Running", timeout, func() (bool, error) {
		p, err := tenant.CoreV1().Pods("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodRunning, fmt.Errorf("phase %s, conditions %+v", p.Status.Phase, p.Status.Conditions)
	})
}

// patchDemoPolicy merge-patches the VirtualCluster default/demo.
func patchDemo(t *testing.T, c *cluster, patch string) {
	t.Helper()
	if !json.Valid([]byte(patch)) {
		t.Fatalf("invalid patch %s", patch)
	}
	if _, err := virtualClusters(t, c).Patch(t.Context(), "demo", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching VirtualCluster default/demo with %s: %v", patch, err)
	}
}
