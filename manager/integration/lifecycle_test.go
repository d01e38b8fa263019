package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

func newVC(name string) *v1alpha1.VirtualCluster {
	return &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
}

// TestLifecycle: two tenants on the default storage, used like clusters,
// isolated from each other, surviving a manager restart with their data and
// credentials, and leaving nothing behind when deleted.
func TestLifecycle(t *testing.T) {
	c := superClient(t)
	stateDir := t.TempDir()
	m := startManager(t, stateDir)
	alpha := createAndWait(t, c, newVC("alpha"))
	beta := createAndWait(t, c, newVC("beta"))
	ta, cfgA := tenantClient(t, c, alpha)
	tb, _ := tenantClient(t, c, beta)

	t.Run("workloads", func(t *testing.T) { useLikeACluster(t, ta, cfgA) })

	t.Run("isolation", func(t *testing.T) {
		if _, err := tb.CoreV1().Namespaces().Get(t.Context(), "app", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("beta sees alpha's namespace app: %v", err)
		}
		cms, err := tb.CoreV1().ConfigMaps("").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cm := range cms.Items {
			if cm.Name == "alpha-only" {
				t.Errorf("beta sees alpha's ConfigMap %s/%s", cm.Namespace, cm.Name)
			}
		}
		// Alpha's credentials are worth nothing at beta's endpoint.
		cross := rest.CopyConfig(cfgA)
		cross.Host = beta.Status.Endpoint
		if _, err := kubernetes.NewForConfigOrDie(cross).CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err == nil {
			t.Error("alpha's kubeconfig works against beta's apiserver")
		}
		etcd := superEtcd(t)
		if n := keysUnder(t, etcd, alpha.Status.EtcdPrefix); n == 0 {
			t.Errorf("no keys under alpha's prefix %s", alpha.Status.EtcdPrefix)
		}
		if alpha.Status.EtcdPrefix == beta.Status.EtcdPrefix || alpha.Status.Endpoint == beta.Status.Endpoint {
			t.Errorf("alpha and beta share prefix or endpoint: %+v %+v", alpha.Status, beta.Status)
		}
	})

	parent := t
	t.Run("manager restart keeps data, port and credentials", func(t *testing.T) {
		m.stop()
		waitUntil(t, 30*time.Second, "alpha's control plane to stop with the manager", func(ctx context.Context) (bool, error) {
			_, err := ta.Discovery().ServerVersion()
			return err != nil, nil
		})
		startManager(parent, stateDir) // runs on for the subtests below
		// The kubeconfig from before the restart must work again: same
		// port, same CA, same admin certificate, same data.
		waitUntil(t, 60*time.Second, "alpha to serve its ConfigMap again", func(ctx context.Context) (bool, error) {
			_, err := ta.CoreV1().ConfigMaps("app").Get(ctx, "alpha-only", metav1.GetOptions{})
			return err == nil, err
		})
		again := newVC("alpha")
		waitRunning(t, c, again)
		if again.Status.Endpoint != alpha.Status.Endpoint {
			t.Errorf("endpoint moved from %s to %s", alpha.Status.Endpoint, again.Status.Endpoint)
		}
	})

	t.Run("immutable fields are refused", func(t *testing.T) {
		patch := []byte(`{"spec":{"controlPlane":{"provisioner":"cluster"}}}`)
		err := c.Patch(t.Context(), newVC("alpha"), client.RawPatch("application/merge-patch+json", patch))
		if err == nil || !strings.Contains(err.Error(), "controlPlane.provisioner is immutable") {
			t.Errorf("changing the provisioner: %v, want the immutability message", err)
		}
		if _, err := ta.CoreV1().Namespaces().Get(t.Context(), "app", metav1.GetOptions{}); err != nil {
			t.Errorf("alpha broke after a refused change: %v", err)
		}
	})

	t.Run("delete leaves nothing", func(t *testing.T) {
		key := alpha.Status.ClusterKey
		// What the syncer would have created, and a look-alike it did not.
		owned := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key + "-app", Labels: map[string]string{ownership.LabelClusterKey: key}}}
		foreign := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key + "-foreign"}}
		for _, ns := range []*corev1.Namespace{owned, foreign} {
			if err := c.Create(t.Context(), ns); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), foreign) })

		var out strings.Builder
		if err := tenantctl.Delete(t.Context(), c, tenantctl.DeleteOptions{Name: "alpha", Namespace: "default", Wait: true, Timeout: time.Minute}, &out); err != nil {
			t.Fatal(err)
		}
		if n := keysUnder(t, superEtcd(t), alpha.Status.EtcdPrefix); n != 0 {
			t.Errorf("%d keys left under %s", n, alpha.Status.EtcdPrefix)
		}
		for _, name := range []string{"alpha-pki", "alpha-kubeconfig"} {
			if err := c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
				t.Errorf("Secret %s: %v, want NotFound", name, err)
			}
		}
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(owned), &corev1.Namespace{}); !apierrors.IsNotFound(err) {
			t.Errorf("the tenant's super namespace: %v, want NotFound", err)
		}
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(foreign), &corev1.Namespace{}); err != nil {
			t.Errorf("an unlabelled namespace with the tenant's prefix was touched: %v", err)
		}
		if _, err := os.Stat(filepath.Join(stateDir, "default", "alpha")); !os.IsNotExist(err) {
			t.Errorf("the local state directory is still there: %v", err)
		}
		if _, err := tb.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err != nil {
			t.Errorf("beta broke when alpha was deleted: %v", err)
		}
	})

	if err := tenantctl.Delete(t.Context(), c, tenantctl.DeleteOptions{Name: "beta", Namespace: "default", Wait: true, Timeout: time.Minute}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if n := keysUnder(t, superEtcd(t), beta.Status.EtcdPrefix); n != 0 {
		t.Errorf("%d keys left under %s", n, beta.Status.EtcdPrefix)
	}
}

// useLikeACluster does what a tenant does with a fresh cluster: namespaces,
// ConfigMaps, RBAC, a CRD, and a Deployment that turns into a ReplicaSet and
// Pods (Pending: no syncer places them yet).
func useLikeACluster(t *testing.T, cs kubernetes.Interface, cfg *rest.Config) {
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("app").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "alpha-only"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}}
	if _, err := cs.RbacV1().Roles("app").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "app"}}}
	if _, err := cs.RbacV1().RoleBindings("app").Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	scheme := clientScheme(t)
	crc, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}}}},
		},
	}
	if err := crc.Create(ctx, crd); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, crc, crd)

	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "vnest.local/busybox:1"}}}},
	}}
	if _, err := cs.AppsV1().Deployments("app").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "a ReplicaSet and 2 Pending pods", func(ctx context.Context) (bool, error) {
		rss, err := cs.AppsV1().ReplicaSets("app").List(ctx, metav1.ListOptions{LabelSelector: selectorString(labels)})
		if err != nil || len(rss.Items) != 1 {
			return false, err
		}
		pods, err := cs.CoreV1().Pods("app").List(ctx, metav1.ListOptions{LabelSelector: selectorString(labels)})
		if err != nil || len(pods.Items) != 2 {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodPending {
				return false, nil
			}
		}
		return true, nil
	})
}

func selectorString(m map[string]string) string { return labels.SelectorFromSet(m).String() }
