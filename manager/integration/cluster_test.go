package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/manager"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// TestClusterProvisionerObjects checks what the cluster provisioner creates
// in a real super cluster. The nodes are simulated (kwok fakes the pod), so
// the control plane never answers: the tenant stays Provisioning and says
// why. Running it for real needs a real node (the e2e tests).
func TestClusterProvisionerObjects(t *testing.T) {
	c := superClient(t)
	startManager(t, t.TempDir())
	vc := newVC("incluster")
	vc.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{Provisioner: v1alpha1.ProvisionerCluster}
	if err := c.Create(t.Context(), vc); err != nil {
		t.Fatal(err)
	}
	name := manager.ControlPlaneName(vc)
	svc := &corev1.Service{}
	d := &appsv1.Deployment{}
	waitUntil(t, 30*time.Second, "the Deployment, Service and PKI Secret", func(ctx context.Context) (bool, error) {
		for _, obj := range []client.Object{d, svc} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, obj); err != nil {
				return false, err
			}
		}
		return true, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: vc.PKISecretName()}, &corev1.Secret{})
	})
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), vc); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{d, svc} {
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != vc.UID || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("%T owner references %+v, want the VirtualCluster as controller", obj, refs)
		}
	}
	if got, want := d.Spec.Template.Spec.Volumes[0].Secret.SecretName, vc.PKISecretName(); got != want {
		t.Errorf("PKI volume from Secret %s, want %s", got, want)
	}
	if want := "--etcd-prefix=" + vc.Status.EtcdPrefix; !containsArg(d.Spec.Template.Spec.Containers[0].Args, want) {
		t.Errorf("args %v lack %s", d.Spec.Template.Spec.Containers[0].Args, want)
	}
	waitUntil(t, 30*time.Second, "a ClusterIP endpoint and a Provisioning condition that says what it waits for", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(vc), vc); err != nil {
			return false, err
		}
		cp := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionControlPlaneReady)
		return vc.Status.Phase == v1alpha1.PhaseProvisioning && vc.Status.Endpoint == "https://"+svc.Spec.ClusterIP+":443" &&
			cp != nil && strings.Contains(cp.Message, "waiting for the tenant apiserver at "+vc.Status.Endpoint), nil
	})
	t.Logf("ControlPlaneReady: %s", meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionControlPlaneReady).Message)

	// The expose type may change: a NodePort on the host IP becomes the endpoint.
	patch := []byte(`{"spec":{"controlPlane":{"expose":{"type":"NodePort"}}}}`)
	if err := c.Patch(t.Context(), vc, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "a NodePort endpoint", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, svc); err != nil {
			return false, err
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(vc), vc); err != nil {
			return false, err
		}
		return svc.Spec.Type == corev1.ServiceTypeNodePort && svc.Spec.Ports[0].NodePort != 0 &&
			strings.HasSuffix(vc.Status.Endpoint, ":"+strconv.Itoa(int(svc.Spec.Ports[0].NodePort))) &&
			vc.Status.ObservedGeneration == vc.Generation, nil
	})

	if err := tenantctl.Delete(t.Context(), c, tenantctl.DeleteOptions{Name: vc.Name, Namespace: "default", Wait: true, Timeout: time.Minute}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: vc.PKISecretName(), Namespace: "default"}},
	} {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s left behind: %v", obj, obj.GetName(), err)
		}
	}
	var pods corev1.PodList
	if err := c.List(t.Context(), &pods, client.InNamespace("default"), client.MatchingLabels{"app.kubernetes.io/instance": vc.Name}); err != nil || len(pods.Items) > 0 {
		t.Errorf("control-plane pods left behind: %d, %v", len(pods.Items), err)
	}
	if n := keysUnder(t, superEtcd(t), vc.Status.EtcdPrefix); n != 0 {
		t.Errorf("%d keys left", n)
	}
}

func containsArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}
