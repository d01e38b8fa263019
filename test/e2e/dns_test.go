package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// dnsPort is the base port of TestTenantDNS.
const dnsPort = 18103

// TestTenantDNS runs real nodes with the syncer's tenant DNS server on the host IP, port 53.
// In the demo tenant, Deployment web (httpd) behind Service web answers a client pod at
// web.default.svc.cluster.local:8080, and `nslookup web` gives the super ClusterIP; the same
// names do not resolve in a second tenant, whose own names do. Pods of a StatefulSet behind a
// headless Service resolve each other as <pod>.<service>.default.svc.cluster.local; a pod with a
// subdomain resolves its own name, and its /etc/hosts does not name the super namespace. Service
// web's tenant ClusterIP is its super Service's, and env, DNS and wget agree with it
// (checkServiceIPs).
func TestTenantDNS(t *testing.T) {
	requireRoot(t)
	c := startCluster(t, clusterOptions{nodes: "real", port: dnsPort})
	demo, demoKubeconfig := waitForDemoTenant(t, c)
	other, otherKubeconfig := createTenant(t, c, "other")
	ctx := t.Context()
	for _, tenant := range []kubernetes.Interface{demo, other} {
		waitFor(t, "the tenant's default service account", time.Minute, func() (bool, error) {
			_, err := tenant.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, err
		})
	}

	web := busyboxDeployment("default", "web", 1)
	web.Spec.Template.Spec.Containers[0].Command = []string{"sh", "-c",
		"mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"}
	if _, err := demo.AppsV1().Deployments("default").Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.CoreV1().Services("default").Create(ctx, clusterIPService("default", "web", "web", 8080, 8080), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	db := clusterIPService("default", "db", "db", 80, 80)
	db.Spec.ClusterIP = corev1.ClusterIPNone
	if _, err := demo.CoreV1().Services("default").Create(ctx, db, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.AppsV1().StatefulSets("default").Create(ctx, statefulSet("default", "db", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []kubernetes.Interface{demo, other} {
		client := busyboxPod("default", "client", "sleep 3600")
		client.Spec.Subdomain = "nosvc" // names no Service: the pod's own name is in its /etc/hosts only
		if _, err := tenant.CoreV1().Pods("default").Create(ctx, client, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		tenant kubernetes.Interface
		pods   []string
	}{{demo, []string{"client", "db-0", "db-1"}}, {other, []string{"client"}}} {
		for _, name := range tc.pods {
			waitForTenantPodRunning(t, tc.tenant, name, 3*time.Minute)
		}
	}

	// sh runs script in a tenant pod.
	sh := func(kubeconfig, pod, script string) (string, error) {
		return tenantKubectl(t, kubeconfig, "exec", pod, "--", "sh", "-c", script)
	}
	resolvConf, err := sh(demoKubeconfig, "client", "cat /etc/resolv.conf")
	if err != nil {
		t.Fatalf("%v: %s", err, resolvConf)
	}
	if !strings.Contains(resolvConf, "search default.svc.cluster.local svc.cluster.local cluster.local") || !strings.Contains(resolvConf, "ndots:5") {
		t.Errorf("the tenant pod's resolv.conf is\n%s\nwant the tenant's search path and ndots:5", resolvConf)
	}
	t.Logf("resolv.conf of a demo pod:\n%s", resolvConf)

	// The pod's own name: its /etc/hosts does not name the super namespace, and the DNS server
	// answers the tenant FQDN to the pod (as a kubelet's /etc/hosts would in any cluster).
	client, err := demo.CoreV1().Pods("default").Get(ctx, "client", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hosts, err := sh(demoKubeconfig, "client", "cat /etc/hosts"); err != nil || strings.Contains(hosts, demoClusterKey(t, c)) {
		t.Errorf("the demo client's /etc/hosts: %v\n%s\nwant no super namespace in it", err, hosts)
	}
	if out, err := sh(demoKubeconfig, "client", "nslookup client.nosvc.default.svc.cluster.local"); !strings.Contains(out, client.Status.PodIP) {
		t.Errorf("nslookup of the demo client's own name in it: %v\n%s\nwant its IP %s", err, out, client.Status.PodIP)
	}

	// busybox's wget -T crashes; timeout bounds a hung connection instead.
	waitFor(t, "http://web.default.svc.cluster.local:8080 from a demo pod", 2*time.Minute, func() (bool, error) {
		out, err := sh(demoKubeconfig, "client", "timeout 5 wget -q -O- http://web.default.svc.cluster.local:8080")
		return strings.Contains(out, "hello-from-web"), fmt.Errorf("%v: %s", err, out)
	})
	superWeb, err := c.client.CoreV1().Services(demoClusterKey(t, c)+"-default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// busybox's nslookup also asks for AAAA (none here) and may exit 1 for that: the output counts.
	out, err := sh(demoKubeconfig, "client", "nslookup web")
	if !strings.Contains(out, superWeb.Spec.ClusterIP) {
		t.Errorf("nslookup web in a demo pod: %v\n%s\nwant the super ClusterIP %s", err, out, superWeb.Spec.ClusterIP)
	}
	if out, err := sh(demoKubeconfig, "client", "timeout 5 wget -q -O- http://web:8080"); !strings.Contains(out, "hello-from-web") {
		t.Errorf("http://web:8080 from a demo pod (search path): %v: %s", err, out)
	}
	checkServiceIPs(t, c, demo, demoKubeconfig, superWeb)

	// The other tenant: its own names resolve (kubernetes.default is its apiserver), the demo
	// tenant's are unknown there (NXDOMAIN, not a refusal).
	otherAPI, err := other.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(otherAPI.Subsets) == 0 || len(otherAPI.Subsets[0].Addresses) == 0 {
		t.Fatalf("the other tenant's default/kubernetes Endpoints: %v %+v", err, otherAPI)
	}
	waitFor(t, "kubernetes.default.svc.cluster.local in the other tenant", time.Minute, func() (bool, error) {
		out, err := sh(otherKubeconfig, "client", "nslookup kubernetes.default.svc.cluster.local")
		return strings.Contains(out, otherAPI.Subsets[0].Addresses[0].IP), fmt.Errorf("%v: %s", err, out)
	})
	if out, _ := sh(otherKubeconfig, "client", "nslookup web.default.svc.cluster.local"); !strings.Contains(out, "NXDOMAIN") || strings.Contains(out, superWeb.Spec.ClusterIP) {
		t.Errorf("nslookup web.default.svc.cluster.local in a pod of the other tenant:\n%s\nwant NXDOMAIN", out)
	}
	for _, script := range []string{"nslookup web", "timeout 5 wget -q -O- http://web.default.svc.cluster.local:8080"} {
		if out, _ := sh(otherKubeconfig, "client", script); strings.Contains(out, superWeb.Spec.ClusterIP) || strings.Contains(out, "hello-from-web") {
			t.Errorf("%s in a pod of the other tenant succeeded, want the demo tenant's name unknown there:\n%s", script, out)
		}
	}

	// StatefulSet pods by name.
	db1, err := demo.CoreV1().Pods("default").Get(ctx, "db-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "db-1.db.default.svc.cluster.local from db-0", time.Minute, func() (bool, error) {
		out, err := sh(demoKubeconfig, "db-0", "nslookup db-1.db.default.svc.cluster.local")
		return strings.Contains(out, db1.Status.PodIP), fmt.Errorf("%v: %s, want %s", err, out, db1.Status.PodIP)
	})
}

// statefulSet runs replicas busybox pods that sleep, selected by app=name, behind the headless
// Service of the same name; all start at once.
func statefulSet(namespace, name string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			ServiceName:         name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{busyboxContainer("sleep 3600")}, TerminationGracePeriodSeconds: ptr.To[int64](1)},
			},
		},
	}
}
