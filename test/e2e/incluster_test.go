package e2e

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// vnestImage carries bin/vnest, so `vnest kubectl` is the in-cluster client (rest.InClusterConfig).
const vnestImage = "vnest.local/vnest:dev"

// checkInClusterClient: a tenant pod's mounted token, CA and KUBERNETES_SERVICE_HOST/PORT are the
// tenant's. In-cluster `kubectl` in a pod of service account reader (bound to view) lists the
// pods of its tenant namespace and is refused Secrets by tenant RBAC, as the tenant service
// account; the token does not open the super cluster's apiserver.
func checkInClusterClient(t *testing.T, c *cluster, tenant kubernetes.Interface, kubeconfig, superNS string) {
	t.Helper()
	ctx := t.Context()
	for _, args := range [][]string{
		{"create", "serviceaccount", "reader"},
		{"create", "rolebinding", "reader-view", "--clusterrole=view", "--serviceaccount=default:reader"},
	} {
		if out, err := tenantKubectl(t, kubeconfig, args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	kubectl := func(name string, args ...string) corev1.Container {
		return corev1.Container{Name: name, Image: vnestImage, ImagePullPolicy: corev1.PullNever, Args: append([]string{"kubectl"}, args...)}
	}
	ep, err := tenant.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(ep.Subsets) == 0 || len(ep.Subsets[0].Addresses) == 0 || len(ep.Subsets[0].Ports) == 0 {
		t.Fatalf("tenant default/kubernetes Endpoints: %v %+v", err, ep)
	}
	host := ep.Subsets[0].Addresses[0].IP // the local control plane's host address
	// The super apiserver's CA (public, not a credential) lets the pod's client get past TLS, so
	// that the super apiserver itself judges the tenant token.
	superURL, superCA := superServer(t, c, host)
	// A kubeconfig for the super apiserver whose credential is the pod's mounted tenant token.
	superKubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: super, cluster: {server: %q, certificate-authority: /super/ca.crt}}]
users: [{name: pod, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]
contexts: [{name: super, context: {cluster: super, user: pod}}]
current-context: super
`, superURL)
	caMap := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "super-ca"},
		Data: map[string]string{"ca.crt": superCA, "kubeconfig": superKubeconfig}}
	if _, err := tenant.CoreV1().ConfigMaps("default").Create(ctx, caMap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	toSuper := kubectl("super", "-v=6", "--kubeconfig=/super/kubeconfig", "get", "namespaces")
	toSuper.VolumeMounts = []corev1.VolumeMount{{Name: "super-ca", MountPath: "/super"}}
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "client"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "reader",
			RestartPolicy:      corev1.RestartPolicyNever,
			Containers:         []corev1.Container{kubectl("pods", "get", "pods", "-o", "name"), kubectl("secrets", "get", "secrets"), toSuper},
			Volumes: []corev1.Volume{{Name: "super-ca", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "super-ca"}}}}},
		},
	}
	probe := busyboxPod("default", "probe", strings.Join([]string{
		`sa=/var/run/secrets/kubernetes.io/serviceaccount`,
		`echo "host=$KUBERNETES_SERVICE_HOST port=$KUBERNETES_SERVICE_PORT ns=$(cat $sa/namespace)"`,
		`grep -q "BEGIN CERTIFICATE" $sa/ca.crt && echo ca=ok`,
	}, "; "))
	probe.Spec.RestartPolicy = corev1.RestartPolicyNever
	tokenRequests := tenantTokenRequests(t, tenant)
	for _, p := range []*corev1.Pod{client, probe} {
		if _, err := tenant.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"client", "probe"} {
		waitFor(t, "tenant pod "+name+" to finish", 2*time.Minute, func() (bool, error) {
			p, err := tenant.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, fmt.Errorf("phase %s", p.Status.Phase)
		})
	}
	// The syncer signs the pods' tokens with the tenant's key (docs/tenant-pods.md): the tenant
	// serves no TokenRequest for them (two per pod when the syncer asks it instead; one more may
	// be a tenant controller's own token coming due meanwhile).
	if n := tenantTokenRequests(t, tenant) - tokenRequests; n >= 2 {
		t.Errorf("the tenant served %v TokenRequests while two pods started; want none for them: the syncer should sign their tokens (did it read the tenant's PKI Secret?)", n)
	}
	logs := func(pod, container string) string {
		out, err := c.client.CoreV1().Pods(superNS).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs of super pod %s/%s %s: %v", superNS, pod, container, err)
		}
		return string(out)
	}
	if out := logs("client", "pods"); !strings.Contains(out, "pod/client") {
		t.Errorf("in-cluster kubectl get pods as default:reader printed %q, want the tenant pod pod/client", out)
	}
	if out := logs("client", "secrets"); !strings.Contains(out, "Forbidden") || !strings.Contains(out, "system:serviceaccount:default:reader") {
		t.Errorf("in-cluster kubectl get secrets printed %q, want Forbidden for system:serviceaccount:default:reader", out)
	}
	out := logs("probe", "main")
	want := fmt.Sprintf("host=%s port=%d ns=default", host, ep.Subsets[0].Ports[0].Port)
	if !strings.Contains(out, want) || !strings.Contains(out, "ca=ok") {
		t.Errorf("probe printed %q, want %q and the tenant CA", out, want)
	}
	t.Logf("probe pod: %s", strings.TrimSpace(out))
	if out := logs("client", "super"); !strings.Contains(out, "401 Unauthorized") || strings.Contains(out, " 200 OK") {
		t.Errorf("in-cluster kubectl against the super apiserver %s printed %q, want 401 Unauthorized", superURL, out)
	}
	for _, name := range []string{"client", "probe"} {
		if err := tenant.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	}
}

// superServer is the super cluster's apiserver URL at host (as a pod reaches it) and its CA.
func superServer(t *testing.T, c *cluster, host string) (server, ca string) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range cfg.Clusters {
		u, err := url.Parse(cl.Server)
		if err != nil {
			t.Fatal(err)
		}
		data := cl.CertificateAuthorityData
		if len(data) == 0 {
			if data, err = os.ReadFile(cl.CertificateAuthority); err != nil {
				t.Fatal(err)
			}
		}
		return "https://" + host + ":" + u.Port(), string(data)
	}
	t.Fatal("no cluster in the super kubeconfig")
	return "", ""
}

// tenantTokenRequests is how many TokenRequests the tenant apiserver has served, from its metrics.
func tenantTokenRequests(t *testing.T, tenant kubernetes.Interface) float64 {
	t.Helper()
	raw, err := tenant.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("tenant metrics: %v", err)
	}
	var n float64
	for line := range strings.Lines(string(raw)) {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="serviceaccounts"`) || !strings.Contains(line, `subresource="token"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("tenant metrics line %q: %v", line, err)
		}
		n += v
	}
	return n
}
