package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/manager"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// TestInvalidSpecs: bad input is refused by the API with a message that
// says what to fix, or reported on the object (condition, phase, event) and
// retried until fixed; nothing else breaks meanwhile.
func TestInvalidSpecs(t *testing.T) {
	c := superClient(t)
	startManager(t, t.TempDir())

	t.Run("refused by the API", func(t *testing.T) {
		unknown := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "VirtualCluster",
			"metadata": map[string]any{"name": "docker", "namespace": "default"},
			"spec":     map[string]any{"controlPlane": map[string]any{"provisioner": "docker"}},
		}}
		for name, tc := range map[string]struct {
			obj  client.Object
			want string
		}{
			"uppercase name":      {newVC("Team_A"), "a lowercase RFC 1123 subdomain"},
			"dotted name":         {newVC("team.a"), "metadata.name must be a DNS label that starts with a letter"},
			"too long name":       {newVC(strings.Repeat("a", 41)), "metadata.name must be at most 40 characters"},
			"unknown provisioner": {unknown, `spec.controlPlane.provisioner: Unsupported value: "docker"`},
		} {
			err := c.Create(t.Context(), tc.obj)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
			}
		}
		var out strings.Builder
		err := tenantctl.Create(t.Context(), c, tenantctl.CreateOptions{Name: "x", Namespace: "default", Provisioner: "docker"}, &out)
		if err == nil || !strings.Contains(err.Error(), `invalid --provisioner "docker"`) {
			t.Errorf("CLI with an unknown provisioner: %v", err)
		}
	})

	t.Run("missing etcd Secret is reported, then fixed", func(t *testing.T) {
		vc := newVC("nostore")
		vc.Spec.Storage = &v1alpha1.StorageSpec{Etcd: &v1alpha1.EtcdStorage{
			Endpoints:            []string{"https://127.0.0.1:" + strconv.Itoa(super.port+1)},
			CredentialsSecretRef: v1alpha1.SecretReference{Name: "nostore-etcd"},
		}}
		if err := c.Create(t.Context(), vc); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, "phase Failed with CredentialsInvalid", func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(vc), vc); err != nil {
				return false, err
			}
			cp := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionControlPlaneReady)
			return vc.Status.Phase == v1alpha1.PhaseFailed && cp != nil && cp.Reason == v1alpha1.ReasonCredentialsInvalid &&
				strings.Contains(cp.Message, "etcd credentials Secret default/nostore-etcd (spec.storage.etcd.credentialsSecretRef) not found"), nil
		})
		waitUntil(t, 30*time.Second, "a Warning event about it", func(ctx context.Context) (bool, error) {
			var evs eventsv1.EventList
			if err := c.List(ctx, &evs, client.InNamespace("default")); err != nil {
				return false, err
			}
			for _, e := range evs.Items {
				if e.Regarding.Name == "nostore" && e.Type == corev1.EventTypeWarning && e.Reason == v1alpha1.ReasonCredentialsInvalid {
					return true, nil
				}
			}
			return false, nil
		})
		err := tenantctl.Kubeconfig(t.Context(), c, tenantctl.KubeconfigOptions{Name: "nostore", Namespace: "default"}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "is not ready yet (phase Failed): ControlPlaneReady=False CredentialsInvalid: etcd credentials Secret default/nostore-etcd") {
			t.Errorf("vnest kubeconfig of a failed tenant: %v", err)
		}

		// Other tenants are not held up meanwhile.
		ok := createAndWait(t, c, newVC("healthy"))

		// Providing the Secret is all it takes.
		pkiDir := filepath.Join(superCluster(t), "pki")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nostore-etcd", Namespace: "default"}, Data: map[string][]byte{
			manager.EtcdCAKey: readFile(t, pkiDir, superEtcdCA(t)+".crt"), manager.EtcdCertKey: readFile(t, pkiDir, "etcd-client.crt"),
			manager.EtcdKeyKey: readFile(t, pkiDir, "etcd-client.key"), manager.EtcdCAKeyKey: readFile(t, pkiDir, superEtcdCA(t)+".key"),
		}}
		if err := c.Create(t.Context(), secret); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), secret) })
		waitRunning(t, c, vc)

		for _, v := range []*v1alpha1.VirtualCluster{vc, ok} {
			if err := tenantctl.Delete(t.Context(), c, tenantctl.DeleteOptions{Name: v.Name, Namespace: "default", Wait: true, Timeout: time.Minute}, &strings.Builder{}); err != nil {
				t.Fatal(err)
			}
			if n := keysUnder(t, superEtcd(t), v.Status.EtcdPrefix); n != 0 {
				t.Errorf("%s: %d keys left", v.Name, n)
			}
		}
	})

	t.Run("a VirtualCluster that never got storage is deleted at once", func(t *testing.T) {
		vc := newVC("neverstored")
		vc.Spec.Storage = &v1alpha1.StorageSpec{Etcd: &v1alpha1.EtcdStorage{
			Endpoints: []string{"https://127.0.0.1:1"}, CredentialsSecretRef: v1alpha1.SecretReference{Name: "missing"},
		}}
		if err := c.Create(t.Context(), vc); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, "the finalizer", func(ctx context.Context) (bool, error) {
			err := c.Get(ctx, client.ObjectKeyFromObject(vc), vc)
			return err == nil && len(vc.Finalizers) > 0, err
		})
		if err := tenantctl.Delete(t.Context(), c, tenantctl.DeleteOptions{Name: vc.Name, Namespace: "default", Wait: true, Timeout: 30 * time.Second}, &strings.Builder{}); err != nil {
			t.Fatal(err)
		}
	})
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
