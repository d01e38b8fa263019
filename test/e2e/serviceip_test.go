package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// checkServiceIPs checks, in TestTenantDNS's demo tenant, that Service web's ClusterIP is its
// super Service's (allocated in the super cluster first, through the syncer's allocator), so
// that everything a pod sees agrees with it: `kubectl get svc web` shows the super IP, the
// client pod's WEB_SERVICE_HOST and the DNS answer for web equal the tenant ClusterIP, and
// wget to that IP answers. Every check compares with the tenant's ClusterIP, so each one fails
// when the tenant allocates on its own (no --service-ip-allocator): env and DNS then carry the
// super IP and the tenant IP routes nowhere. A NodePort Service gets the super node port, and
// an ExternalName Service updated to ClusterIP gets the super IP too.
func checkServiceIPs(t *testing.T, c *cluster, demo kubernetes.Interface, kubeconfig string, superWeb *corev1.Service) {
	t.Helper()
	ctx := t.Context()
	sh := func(script string) (string, error) {
		return tenantKubectl(t, kubeconfig, "exec", "client", "--", "sh", "-c", script)
	}
	out, err := tenantKubectl(t, kubeconfig, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
	tenantIP := strings.TrimSpace(out)
	if err != nil || tenantIP != superWeb.Spec.ClusterIP {
		t.Errorf("kubectl get svc web in the tenant: ClusterIP %q (%v), want the super Service's %s", tenantIP, err, superWeb.Spec.ClusterIP)
	}
	// The client pod was created after Service web, so it has web's environment.
	if out, err := sh("echo $WEB_SERVICE_HOST:$WEB_SERVICE_PORT"); strings.TrimSpace(out) != tenantIP+":8080" {
		t.Errorf("WEB_SERVICE_HOST:WEB_SERVICE_PORT in a demo pod = %q (%v), want %s:8080", strings.TrimSpace(out), err, tenantIP)
	}
	if out, err := sh("nslookup web.default.svc.cluster.local"); !strings.Contains(out, "Address: "+tenantIP) {
		t.Errorf("nslookup web.default.svc.cluster.local in a demo pod: %v\n%s\nwant the tenant ClusterIP %s", err, out, tenantIP)
	}
	if out, err := sh("timeout 5 wget -q -O- http://" + tenantIP + ":8080"); !strings.Contains(out, "hello-from-web") {
		t.Errorf("http://%s:8080 (the tenant ClusterIP of web) from a demo pod: %v: %s", tenantIP, err, out)
	}

	// A NodePort Service gets the super node port too.
	np := clusterIPService("default", "web-np", "web", 8080, 8080)
	np.Spec.Type = corev1.ServiceTypeNodePort
	tenantNP, err := demo.CoreV1().Services("default").Create(ctx, np, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	superNP, err := c.client.CoreV1().Services(demoClusterKey(t, c)+"-default").Get(ctx, "web-np", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tenantNP.Spec.Ports[0].NodePort != superNP.Spec.Ports[0].NodePort || tenantNP.Spec.ClusterIP != superNP.Spec.ClusterIP {
		t.Errorf("NodePort Service web-np: tenant %s:%d, super %s:%d; want the same ClusterIP and node port",
			tenantNP.Spec.ClusterIP, tenantNP.Spec.Ports[0].NodePort, superNP.Spec.ClusterIP, superNP.Spec.Ports[0].NodePort)
	}

	// ExternalName → ClusterIP: the update takes its IP from the super cluster as well.
	ext := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
	}
	if _, err := demo.CoreV1().Services("default").Create(ctx, ext, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := `{"spec":{"type":"ClusterIP","externalName":null,"selector":{"app":"web"},"ports":[{"port":8080}]}}`
	updated, err := demo.CoreV1().Services("default").Patch(ctx, "ext", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("updating Service ext to ClusterIP: %v", err)
	}
	superNS := demoClusterKey(t, c) + "-default"
	waitFor(t, "the super Service of ext to have the tenant's ClusterIP "+updated.Spec.ClusterIP, time.Minute, func() (bool, error) {
		s, err := c.client.CoreV1().Services(superNS).Get(ctx, "ext", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return s.Spec.Type == corev1.ServiceTypeClusterIP && s.Spec.ClusterIP == updated.Spec.ClusterIP,
			fmt.Errorf("super Service ext: type %s, ClusterIP %q", s.Spec.Type, s.Spec.ClusterIP)
	})
}

// checkServiceIPsKept checks that the syncer asks the super cluster for the tenant's allocations
// when it writes a super Service after the fact: a super Service deleted by hand is recreated
// with the tenant's ClusterIP (not a new one), and a tenant ClusterIP Service changed to NodePort
// (whose node port the tenant apiserver allocates) gets the same node port in the super cluster.
func checkServiceIPsKept(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string) {
	t.Helper()
	ctx := t.Context()
	created, err := tenant.CoreV1().Services("default").Create(ctx, clusterIPService("default", "e2e-kept", "e2e-kept", 80, 8080), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.client.CoreV1().Services(superNS).Get(ctx, "e2e-kept", metav1.GetOptions{})
	if err != nil || first.Spec.ClusterIP != created.Spec.ClusterIP {
		t.Fatalf("super Service e2e-kept: %v (ClusterIP %q), want the tenant's %s", err, first.Spec.ClusterIP, created.Spec.ClusterIP)
	}
	if err := c.client.CoreV1().Services(superNS).Delete(ctx, "e2e-kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the super Service deleted by hand to come back with the tenant's ClusterIP "+created.Spec.ClusterIP, time.Minute, func() (bool, error) {
		s, err := c.client.CoreV1().Services(superNS).Get(ctx, "e2e-kept", metav1.GetOptions{})
		if err != nil || s.UID == first.UID {
			return false, err
		}
		return s.Spec.ClusterIP == created.Spec.ClusterIP, fmt.Errorf("recreated with ClusterIP %s", s.Spec.ClusterIP)
	})

	patch := `{"spec":{"type":"NodePort"}}`
	updated, err := tenant.CoreV1().Services("default").Patch(ctx, "e2e-kept", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("changing e2e-kept to NodePort: %v", err)
	}
	want := updated.Spec.Ports[0].NodePort
	waitFor(t, fmt.Sprintf("the super Service to become NodePort with the tenant's node port %d", want), time.Minute, func() (bool, error) {
		s, err := c.client.CoreV1().Services(superNS).Get(ctx, "e2e-kept", metav1.GetOptions{})
		if err != nil || s.Spec.Type != corev1.ServiceTypeNodePort {
			return false, err
		}
		return s.Spec.Ports[0].NodePort == want, fmt.Errorf("super node port %d", s.Spec.Ports[0].NodePort)
	})
}
