package e2e

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestSimulatedNodes runs three kwok nodes and a 20-replica Deployment, which must all become
// Running on those nodes with (fake) pod IPs.
func TestSimulatedNodes(t *testing.T) {
	c := startCluster(t, clusterOptions{nodes: "simulated", nodeCount: 3, port: 16463})
	nodes := nodeNames(requireReadyNodes(t, c, 3))

	const ns, replicas = "e2e", 20
	createNamespace(t, c, ns)
	deploy := busyboxDeployment(ns, "sim", replicas)
	if _, err := c.client.AppsV1().Deployments(ns).Create(t.Context(), deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment sim: %v", err)
	}

	selector := labels.SelectorFromSet(deploy.Spec.Selector.MatchLabels).String()
	var running []corev1.Pod
	waitFor(t, fmt.Sprintf("%d Running pods of deployment sim", replicas), 3*time.Minute, func() (bool, error) {
		pods, err := c.client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		running = running[:0]
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running = append(running, p)
			}
		}
		if len(running) != replicas {
			return false, fmt.Errorf("%d of %d pods Running (%d pods in all)", len(running), replicas, len(pods.Items))
		}
		return true, nil
	})
	for _, p := range running {
		if !slices.Contains(nodes, p.Spec.NodeName) {
			t.Errorf("pod %s runs on %q, not on one of the nodes %v", p.Name, p.Spec.NodeName, nodes)
		}
		if p.Status.PodIP == "" {
			t.Errorf("pod %s is Running without a pod IP", p.Name)
		}
	}
}

// TestRestartKeepsData stops a cluster and starts it again on the same data directory: what was
// stored must still be there, as the same object (same UID), not a re-creation.
func TestRestartKeepsData(t *testing.T) {
	opts := clusterOptions{nodes: "simulated", nodeCount: 1, port: 16483, dataDir: t.TempDir()}
	const ns, name = "e2e-restart", "kept"
	want := map[string]string{"greeting": "hello", "answer": "42"}

	first := startCluster(t, opts)
	createNamespace(t, first, ns)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: want}
	created, err := first.client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating configmap %s/%s: %v", ns, name, err)
	}
	first.stop(t)
	if t.Failed() {
		t.FailNow()
	}

	second := startCluster(t, opts)
	got, err := second.client.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting configmap %s/%s after the restart: %v", ns, name, err)
	}
	if got.UID != created.UID {
		t.Errorf("configmap UID changed across the restart: %s, was %s", got.UID, created.UID)
	}
	if !maps.Equal(got.Data, want) {
		t.Errorf("configmap data after the restart = %v, want %v", got.Data, want)
	}
}
