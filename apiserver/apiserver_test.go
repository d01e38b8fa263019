package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/exepages"
	"github.com/vnest-dev/vnest/internal/pki"
	"github.com/vnest-dev/vnest/internal/serviceip"
)

// TestControlPlane runs one tenant in this process and uses it like a
// tenant admin would; at the end it restarts it on the same state and etcd
// prefix and checks nothing was lost.
func TestControlPlane(t *testing.T) {
	etcd := startEtcd(t)
	state := t.TempDir()
	allocator := startFakeAllocator(t)
	args := append(tenantArgs(t, etcd, state, "/vnest/tenants/a"), "--service-ip-allocator="+allocator.URL+serviceip.Path)
	tn := startTenant(t, args)
	client := clientFor(t, tn.admin)
	ctx := t.Context()
	const ns = "team-a"

	t.Run("start-up memory limit lifted once ready", func(t *testing.T) {
		// This test process had no limit; --start-memory-limit (100Mi) held until ready.
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Errorf("Go memory limit once ready: %d, want none (%d)", got, int64(math.MaxInt64))
		}
	})

	t.Run("executable's pages released once ready", func(t *testing.T) {
		// --release-executable-pages (default): this test binary's read-only mappings
		// are unmapped and marked no-huge-page just after admin.kubeconfig is written.
		exe, err := os.Readlink("/proc/self/exe")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the executable's mappings marked no-huge-page", 10*time.Second, func(context.Context) (bool, error) {
			smaps, err := os.Open("/proc/self/smaps")
			if err != nil {
				return false, err
			}
			defer smaps.Close()
			regions, err := exepages.Regions(smaps, exe)
			if err != nil || len(regions) == 0 {
				return false, fmt.Errorf("no read-only mapping of %s: %v", exe, err)
			}
			for _, r := range regions {
				if !r.NoHugePage {
					return false, nil
				}
			}
			return true, nil
		})
	})

	t.Run("namespace gets a default service account", func(t *testing.T) {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "default ServiceAccount in "+ns, time.Minute, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err == nil, err
		})
		eventually(t, "kube-root-ca.crt ConfigMap in "+ns, time.Minute, func(ctx context.Context) (bool, error) {
			cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			return err == nil && cm.Data["ca.crt"] != "", err
		})
	})

	t.Run("bootstrap policy written by vnest, as upstream's", func(t *testing.T) {
		// The upstream hooks are replaced by seedBootstrapPolicy (rbacseed.go): every bootstrap
		// ClusterRole is there, written once, by it, and the system PriorityClasses exist.
		roles, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/bootstrapping=rbac-defaults"})
		if err != nil {
			t.Fatal(err)
		}
		if want := len(bootstrappolicy.ClusterRoles()) + len(bootstrappolicy.ControllerRoles()); len(roles.Items) != want {
			t.Errorf("%d bootstrap ClusterRoles, want %d", len(roles.Items), want)
		}
		for _, r := range roles.Items {
			if r.AggregationRule != nil {
				continue // its rules are the aggregation controller's to write
			}
			if len(r.ManagedFields) != 1 || r.ManagedFields[0].Manager != rbacSeedAgent {
				t.Errorf("ClusterRole %s written by %v, want once by %s", r.Name, managers(r.ManagedFields), rbacSeedAgent)
			}
		}
		for _, name := range []string{"system-node-critical", "system-cluster-critical"} {
			if _, err := client.SchedulingV1().PriorityClasses().Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("PriorityClass %s: %v", name, err)
			}
		}
	})

	t.Run("configmap", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}, Data: map[string]string{"color": "blue"}}
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("rbac role and binding", func(t *testing.T) {
		role := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "cm-reader", Namespace: ns},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
		}
		if _, err := client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		binding := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "alice-reads-cms", Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "cm-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
		}
		if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		alice := clientFor(t, userConfig(t, tn, "alice"))
		eventually(t, "alice can list configmaps", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			return err == nil, err
		})
		_, err := alice.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("alice listing secrets: got %v, want 403 Forbidden", err)
		}
	})

	t.Run("crd and custom object", func(t *testing.T) {
		createWidgetCRD(t, tn.admin)
		dyn := dynamic.NewForConfigOrDie(tn.admin)
		gvr := schema.GroupVersionResource{Group: "example.vnest.dev", Version: "v1", Resource: "widgets"}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.vnest.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w1", "namespace": ns},
			"spec":     map[string]any{"size": int64(3)},
		}}
		// The CRD's REST handler appears shortly after Established.
		eventually(t, "create a Widget", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
			return err == nil, err
		})
		got, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, "w1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 3 {
			t.Fatalf("Widget spec.size = %d, want 3", size)
		}
	})

	t.Run("validating admission policy type-checked", func(t *testing.T) {
		// Run by vnest (package vapstatus) instead of kube-controller-manager: the policy's
		// expression compares an int with a string, which the status must name.
		policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "replicas-typed"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					}}}},
				Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas > '1'"}},
			},
		}
		created, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, policy.Name, metav1.DeleteOptions{})
		var got *admissionregistrationv1.ValidatingAdmissionPolicy
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err = client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, policy.Name, metav1.GetOptions{})
			return err == nil && got.Status.ObservedGeneration == created.Generation, nil
		})
		if err != nil {
			t.Fatalf("the policy's status was not written (observedGeneration %d): %v", got.Status.ObservedGeneration, err)
		}
		if tc := got.Status.TypeChecking; tc == nil || len(tc.ExpressionWarnings) != 1 ||
			tc.ExpressionWarnings[0].FieldRef != "spec.validations[0].expression" ||
			!strings.Contains(tc.ExpressionWarnings[0].Warning, "found no matching overload for '_>_' applied to '(int, string)'") {
			t.Errorf("type checking: %+v, want one warning of no matching overload on spec.validations[0].expression", tc)
		}
	})

	t.Run("openapi documents as kubectl reads them", func(t *testing.T) {
		// The kube-apiserver's built-in documents are served from their bytes (package
		// openapibytes); the aggregator merges v2 and proxies v3, CRDs' included.
		v2, err := client.Discovery().OpenAPISchema()
		if err != nil {
			t.Fatalf("OpenAPI v2: %v", err)
		}
		if !slices.ContainsFunc(v2.GetDefinitions().GetAdditionalProperties(), func(p *openapi_v2.NamedSchema) bool {
			return p.GetName() == "io.k8s.api.apps.v1.Deployment"
		}) {
			t.Errorf("OpenAPI v2: no io.k8s.api.apps.v1.Deployment among %d definitions", len(v2.GetDefinitions().GetAdditionalProperties()))
		}
		paths, err := client.Discovery().OpenAPIV3().Paths()
		if err != nil {
			t.Fatalf("OpenAPI v3 discovery: %v", err)
		}
		for gv, want := range map[string]string{
			"api/v1":                    "io.k8s.api.core.v1.ConfigMap",
			"apis/apps/v1":              "io.k8s.api.apps.v1.Deployment",
			"apis/example.vnest.dev/v1": "dev.vnest.example.v1.Widget",
		} {
			doc, ok := paths[gv]
			if !ok {
				t.Errorf("OpenAPI v3: no %s in discovery", gv)
				continue
			}
			for _, contentType := range []string{runtime.ContentTypeJSON, openapi.ContentTypeOpenAPIV3PB} {
				// A second read comes from client-go's cache: GroupVersion caches by hash.
				body, err := doc.Schema(contentType)
				if err != nil || !strings.Contains(string(body), want) {
					t.Errorf("OpenAPI v3 of %s as %s: %v, %d bytes without %s", gv, contentType, err, len(body), want)
				}
			}
		}
	})

	t.Run("a node gets no taint it was not created with", func(t *testing.T) {
		// Upstream's TaintNodesByCondition admission would add node.kubernetes.io/not-ready.
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "mirror"},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "example.com/super", Effect: corev1.TaintEffectNoSchedule}}}}
		got, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Spec.Taints, node.Spec.Taints) {
			t.Errorf("taints %v, want %v", got.Spec.Taints, node.Spec.Taints)
		}
		if err := client.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("all resources share one etcd connection", func(t *testing.T) {
		// Upstream dials one etcd client per resource (~63 connections for an empty tenant);
		// package sharedetcd shares one among the storage of every resource, the CRD's above
		// included. What is left is upstream's own few: the endpoint lease reconciler, the
		// Service IP and port allocators, the health checks.
		const most = 10
		if n := etcdConnections(t, etcd); n > most {
			t.Errorf("%d connections to etcd, want at most %d", n, most)
		}
	})

	t.Run("deployment yields a replicaset and pending pods", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox"}}},
				},
			},
		}
		if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a ReplicaSet owned by the Deployment and 2 Pods owned by it", 2*time.Minute, func(ctx context.Context) (bool, error) {
			rss, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(rss.Items) != 1 || !ownedBy(rss.Items[0].OwnerReferences, "Deployment", "web") {
				return false, err
			}
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			owned := 0
			for _, p := range pods.Items {
				if ownedBy(p.OwnerReferences, "ReplicaSet", rss.Items[0].Name) && p.Status.Phase == corev1.PodPending {
					owned++
				}
			}
			return owned == 2, nil
		})
	})

	t.Run("services take their cluster IP from the allocator", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
		}
		got, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.ClusterIP != "10.32.0.77" {
			t.Errorf("ClusterIP = %q, want the allocator's 10.32.0.77", got.Spec.ClusterIP)
		}
		if req := allocator.last(); req.Service.Namespace != ns || req.Service.Name != "web" {
			t.Errorf("the allocator was asked for %s/%s, want %s/web", req.Service.Namespace, req.Service.Name, ns)
		}
		headless := svc.DeepCopy()
		headless.Name, headless.Spec.ClusterIP = "db", corev1.ClusterIPNone
		if _, err := client.CoreV1().Services(ns).Create(ctx, headless, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := allocator.calls(); n != 1 {
			t.Errorf("the allocator was called %d times, want once (not for a headless Service)", n)
		}
		generated := svc.DeepCopy()
		generated.Name, generated.GenerateName, generated.Spec.Type = "", "gen-", corev1.ServiceTypeNodePort
		got, err = client.CoreV1().Services(ns).Create(ctx, generated, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a NodePort Service with generateName: %v", err)
		}
		if req := allocator.last(); req.Service.Name != got.Name || !strings.HasPrefix(got.Name, "gen-") ||
			got.Spec.ClusterIP != "10.32.0.78" || got.Spec.Ports[0].NodePort != 30101 {
			t.Errorf("generateName Service %q: ClusterIP %s, node port %d, allocator asked for %q; want 10.32.0.78, 30101 and its name",
				got.Name, got.Spec.ClusterIP, got.Spec.Ports[0].NodePort, req.Service.Name)
		}
		allocator.Close()
		svc.Name = "web2"
		_, err = client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "unreachable") {
			t.Errorf("create with the allocator down: %v, want 503 saying it is unreachable", err)
		}
	})

	t.Run("a tenant's own unbound PersistentVolume can be deleted", func(t *testing.T) {
		// The StorageObjectInUseProtection admission puts kubernetes.io/pv-protection on it;
		// only the tenant's PV protection controller takes it off again.
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "own-volume"},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "example.com", VolumeHandle: "v1"}},
			},
		}
		created, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(created.Finalizers, "kubernetes.io/pv-protection") {
			t.Fatalf("finalizers %v; the admission did not protect the volume", created.Finalizers)
		}
		if err := client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the deleted PersistentVolume gone", 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})

	t.Run("a CSR cannot mint the kubelet client certificate", func(t *testing.T) {
		testCSRCannotMintKubeletClient(t, tn)
	})

	t.Run("restart keeps the data", func(t *testing.T) {
		tn.stop()
		tn = startTenant(t, args)
		client := clientFor(t, tn.admin)
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["color"] != "blue" {
			t.Fatalf("ConfigMap data after restart = %v, want color=blue", cm.Data)
		}
	})
}

// TestTenantsAreIsolated runs two tenants on one etcd with different
// prefixes: neither sees the other's namespaces, neither accepts the other's
// admin. Tenant b runs as a child process, as tenants do in production: one
// control plane per process (a second Run in this process is refused).
func TestTenantsAreIsolated(t *testing.T) {
	etcd := startEtcd(t)
	a := startTenant(t, tenantArgs(t, etcd, t.TempDir(), "/vnest/tenants/a"))
	bState := t.TempDir()
	b, _ := startChildTenant(t, "", tenantArgs(t, etcd, bState, "/vnest/tenants/b"), bState)

	second := NewOptions()
	second.StateDir, second.EtcdServers, second.EtcdPrefix = t.TempDir(), []string{etcd}, "/vnest/tenants/c"
	second.BindAddress, second.SecurePort = "127.0.0.1", freePort(t)
	if err := Run(t.Context(), second); err == nil || !strings.Contains(err.Error(), "already runs in this process") {
		t.Errorf("second Run in one process: error = %v, want a refusal", err)
	}

	ca, cb := clientFor(t, a.admin), clientFor(t, b.admin)
	ctx := t.Context()
	for c, name := range map[kubernetes.Interface]string{ca: "only-in-a", cb: "only-in-b"} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for c, other := range map[kubernetes.Interface]string{ca: "only-in-b", cb: "only-in-a"} {
		if _, err := c.CoreV1().Namespaces().Get(ctx, other, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s seen from the other tenant: got %v, want NotFound", other, err)
		}
	}
	// Different CAs: one tenant's admin certificate is nobody in the other.
	if _, err := clientFor(t, crossConfig(a.admin, b.admin)).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("tenant a's admin certificate against tenant b: got %v, want 401 Unauthorized", err)
	}
}

// TestChildProcess runs the control plane the way the operator's local
// provisioner does, as a process of its own, and stops it with SIGTERM.
func TestChildProcess(t *testing.T) {
	etcd := startEtcd(t)
	state := t.TempDir()
	tn, _ := startChildTenant(t, "", tenantArgs(t, etcd, state, "/vnest/tenants/child"), state)
	if _, err := clientFor(t, tn.admin).CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tn.stop()
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}

func ownedBy(refs []metav1.OwnerReference, kind, name string) bool {
	for _, r := range refs {
		if r.Kind == kind && r.Name == name && ptr.Deref(r.Controller, false) {
			return true
		}
	}
	return false
}

// userConfig is tn's admin config with a fresh client certificate for user
// (no groups), signed by the tenant CA.
func userConfig(t *testing.T, tn *tenant, user string) *rest.Config {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(tn.stateDir, layout.CAName, "unused")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Ensure(t.TempDir(), user, pki.Spec{CommonName: user, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(tn.admin)
	cfg.CertFile, cfg.KeyFile = pair.CertFile, pair.KeyFile
	return cfg
}

// crossConfig talks to to's server, trusting it, with from's client certificate.
func crossConfig(from, to *rest.Config) *rest.Config {
	cfg := rest.AnonymousClientConfig(to)
	cfg.CertData, cfg.KeyData = from.CertData, from.KeyData
	return cfg
}

func createWidgetCRD(t *testing.T, cfg *rest.Config) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.vnest.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.vnest.dev",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}},
					},
				}},
			}},
		},
	}
	client := apiextensionsclient.NewForConfigOrDie(cfg)
	if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CRD established", 30*time.Second, func(ctx context.Context) (bool, error) {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// fakeAllocator answers the n-th Service IP request (from 0) with 10.32.0.(77+n) and node ports
// 30100+n, and records the requests.
type fakeAllocator struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []serviceip.Request
}

func startFakeAllocator(t *testing.T) *fakeAllocator {
	f := &fakeAllocator{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req serviceip.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != serviceip.Path {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		n := len(f.reqs)
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		resp := serviceip.Response{ClusterIPs: []string{fmt.Sprintf("10.32.0.%d", 77+n)}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}}
		for range req.Service.Spec.Ports {
			resp.NodePorts = append(resp.NodePorts, int32(30100+n))
		}
		_ = json.NewEncoder(w).Encode(resp)
	}))
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAllocator) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fakeAllocator) last() serviceip.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		return serviceip.Request{}
	}
	return f.reqs[len(f.reqs)-1]
}

func managers(fields []metav1.ManagedFieldsEntry) []string {
	var m []string
	for _, f := range fields {
		m = append(m, f.Manager+"/"+string(f.Operation))
	}
	return m
}

// etcdConnections counts the established TCP connections of this network namespace to the
// etcd at etcdURL (its client side: the remote port is etcd's).
func etcdConnections(t testing.TB, etcdURL string) int {
	t.Helper()
	u, err := url.Parse(etcdURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st ...; st 01 is ESTABLISHED.
			if f := strings.Fields(line); len(f) > 3 && strings.HasSuffix(f[2], want) && f[3] == "01" {
				n++
			}
		}
	}
	return n
}
