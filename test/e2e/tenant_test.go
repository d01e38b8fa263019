package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestDemoTenant checks that `vnest up` runs the manager, the syncer and the demo tenant:
// DIR/demo.kubeconfig appears and is a working, separate control plane whose controllers turn a
// Deployment into a ReplicaSet and Pods, which the syncer runs on the (simulated) super nodes.
func TestDemoTenant(t *testing.T) {
	c := startCluster(t, clusterOptions{nodes: "simulated", port: 16603})
	tenant, _ := waitForDemoTenant(t, c)

	const ns = "e2e-tenant"
	if _, err := tenant.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s in the tenant: %v", ns, err)
	}
	deploy := busyboxDeployment(ns, "web", 2)
	waitFor(t, "the tenant's default service account", time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().ServiceAccounts(ns).Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil, err
	})
	if _, err := tenant.AppsV1().Deployments(ns).Create(t.Context(), deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment in the tenant: %v", err)
	}
	selector := labels.SelectorFromSet(deploy.Spec.Selector.MatchLabels).String()
	usedNodes := map[string]bool{}
	waitFor(t, "2 Running pods of the tenant deployment", time.Minute, func() (bool, error) {
		pods, err := tenant.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
				running++
				usedNodes[p.Spec.NodeName] = true
			}
		}
		return running == 2, fmt.Errorf("%d pods, %d Running on a node", len(pods.Items), running)
	})

	// The tenant's objects live in the tenant only.
	if _, err := c.client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); err == nil {
		t.Errorf("namespace %s of the tenant exists in the super cluster", ns)
	}
	// The tenant sees (virtual) nodes only where its pods run.
	nodes, err := tenant.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if !usedNodes[n.Name] {
			t.Errorf("the tenant sees node %s, which runs none of its pods", n.Name)
		}
	}
}
