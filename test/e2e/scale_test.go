package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestSyncerAtScale runs on SIMULATED (kwok) nodes, because the one real node of this machine
// cannot hold 200 pods. Two tenants use the same namespace and object names (Deployment web,
// ConfigMap conf with different data, Pod same) and coexist without collision; then the
// syncer is killed (SIGKILL) in the middle of a 200-pod rollout of one tenant and started
// again: both sides converge with no duplicate, no orphan and nothing lost, and the other
// tenant's objects are untouched. Last, an event recorded in the super cluster while the
// syncer is down reaches the tenant once the syncer is back.
func TestSyncerAtScale(t *testing.T) {
	c := startCluster(t, clusterOptions{nodes: "simulated", nodeCount: 3, port: 16923, extraArgs: []string{"--no-syncer"}})
	demo, demoKubeconfig := waitForDemoTenant(t, c)
	other, otherKubeconfig := createTenant(t, c, "other")
	demoNS, otherNS := demoClusterKey(t, c)+"-default", tenantClusterKey(t, c, "other")+"-default"
	syncer := startSyncer(t, c)

	for _, tc := range []struct {
		kubeconfig, data string
	}{{demoKubeconfig, "demo"}, {otherKubeconfig, "other"}} {
		for _, args := range [][]string{
			{"create", "deployment", "web", "--image=" + busyboxImage, "--replicas=2"},
			{"create", "configmap", "conf", "--from-literal=tenant=" + tc.data},
		} {
			if out, err := tenantKubectl(t, tc.kubeconfig, args...); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
	}
	for _, tenant := range []kubernetes.Interface{demo, other} {
		p := busyboxPod("default", "same", "sleep 3600")
		p.Spec.Volumes = []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/conf"}}
		if _, err := tenant.CoreV1().Pods("default").Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitForConvergence(t, c, demo, demoNS, 2, 2*time.Minute)
	waitForConvergence(t, c, other, otherNS, 2, 2*time.Minute)
	for _, tc := range []struct {
		tenant  kubernetes.Interface
		superNS string
		data    string
	}{{demo, demoNS, "demo"}, {other, otherNS, "other"}} {
		waitForTenantPodRunning(t, tc.tenant, "same", time.Minute)
		tp, err := tc.tenant.CoreV1().Pods("default").Get(t.Context(), "same", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sp, err := c.client.CoreV1().Pods(tc.superNS).Get(t.Context(), "same", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sp.Annotations[annotationTenantUID] != string(tp.UID) {
			t.Errorf("super pod %s/same belongs to tenant pod %s, want %s", tc.superNS, sp.Annotations[annotationTenantUID], tp.UID)
		}
		cm, err := c.client.CoreV1().ConfigMaps(tc.superNS).Get(t.Context(), "conf", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["tenant"] != tc.data {
			t.Errorf("super ConfigMap %s/conf has data %v, want tenant=%s", tc.superNS, cm.Data, tc.data)
		}
	}

	const replicas = 200
	start := time.Now()
	syncer = killMidRollout(t, c, demoKubeconfig, demoNS, syncer, replicas, 60)
	waitForConvergence(t, c, demo, demoNS, replicas, 5*time.Minute)
	t.Logf("%d-pod rollout converged %v after scaling, across a syncer kill", replicas, time.Since(start).Round(time.Second))
	waitForConvergence(t, c, other, otherNS, 2, time.Minute)

	// An event the super cluster records while the syncer is down reaches the tenant once it is
	// back: the syncer queues a tenant's existing super events when it starts serving it.
	syncer.kill(t)
	sp, err := c.client.CoreV1().Pods(demoNS).Get(t.Context(), "same", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: demoNS, Name: "same.while-down"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: demoNS, Name: "same", UID: sp.UID},
		Reason:         "WhileSyncerDown", Message: "recorded while the syncer was down", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "e2e"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if _, err := c.client.CoreV1().Events(demoNS).Create(t.Context(), ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	startSyncer(t, c)
	waitFor(t, "the event recorded while the syncer was down, in the tenant", time.Minute, func() (bool, error) {
		got, err := demo.CoreV1().Events("default").Get(t.Context(), "same.while-down", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Reason == "WhileSyncerDown" && got.InvolvedObject.Name == "same", fmt.Errorf("event %s about %s", got.Reason, got.InvolvedObject.Name)
	})
}

// createTenant creates VirtualCluster default/name with `vnest create --wait` and returns a
// client and the path of its kubeconfig.
func createTenant(t *testing.T, c *cluster, name string) (kubernetes.Interface, string) {
	t.Helper()
	if stderr, _, err := runVnest(t, 3*time.Minute, "create", name, "--wait", "--kubeconfig", c.kubeconfig); err != nil {
		t.Fatalf("vnest create %s: %v\n%s", name, err, stderr)
	}
	file := filepath.Join(t.TempDir(), name+".kubeconfig")
	if stderr, _, err := runVnest(t, time.Minute, "kubeconfig", name, "-o", file, "--kubeconfig", c.kubeconfig); err != nil {
		t.Fatalf("vnest kubeconfig %s: %v\n%s", name, err, stderr)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", file)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 30 * time.Second
	cfg.QPS, cfg.Burst = 50, 100
	client := kubernetes.NewForConfigOrDie(cfg)
	waitForDefaultServiceAccount(t, client)
	return client, file
}

// waitForDefaultServiceAccount waits until the tenant admits pods in namespace default: Running
// means the apiserver is ready, and the serviceaccount controller may need a moment more.
func waitForDefaultServiceAccount(t *testing.T, tenant kubernetes.Interface) {
	t.Helper()
	waitFor(t, "the tenant's default service account", time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().ServiceAccounts("default").Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil, err
	})
}

// tenantClusterKey reads status.clusterKey of VirtualCluster default/name.
func tenantClusterKey(t *testing.T, c *cluster, name string) string {
	t.Helper()
	key, err := virtualClusterField(t, c, name, "status", "clusterKey")
	if err != nil || key == "" {
		t.Fatalf("VirtualCluster default/%s has no status.clusterKey (err: %v)", name, err)
	}
	return key
}
