package manager

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// TestRefusedWrites: an object the manager writes (the cluster
// provisioner's Service and Deployment, the PKI and kubeconfig Secrets)
// that the super cluster refuses for its content (Invalid; Forbidden by a
// ResourceQuota) makes the tenant Failed at once, a running one too (no
// failure threshold: sending it again does not help), with the
// apiserver's message, and is tried again every retryFailure (a quota may
// come to fit) rather than returned to the controller's back-off.
func TestRefusedWrites(t *testing.T) {
	invalid := func(kind, name string) error {
		return apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: kind}, name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "template", "spec", "containers").Index(0).Child("resources", "requests").Key("example.com/gpu"),
				"1", "must be equal to example.com/gpu limit of 0"),
		})
	}
	quota := func(resource, name string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, name,
			fmt.Errorf("exceeded quota: objects, requested: count/%s=1, used: count/%s=4, limited: count/%s=4", resource, resource, resource))
	}
	cases := map[string]struct {
		kind      client.Object
		name      string
		err       error
		condition string // the condition that goes False
		reason    string
	}{
		"the Deployment is invalid": {
			kind: &appsv1.Deployment{}, name: "demo-apiserver", err: invalid("Deployment", "demo-apiserver"),
			condition: cpReady, reason: v1alpha1.ReasonProvisionFailed,
		},
		"the Service is over the quota": {
			kind: &corev1.Service{}, name: "demo-apiserver", err: quota("services", "demo-apiserver"),
			condition: cpReady, reason: v1alpha1.ReasonProvisionFailed,
		},
		"the PKI Secret is over the quota": {
			kind: &corev1.Secret{}, name: "demo-pki", err: quota("secrets", "demo-pki"),
			condition: cpReady, reason: v1alpha1.ReasonPKIFailed,
		},
		"the kubeconfig Secret is over the quota": {
			kind: &corev1.Secret{}, name: "demo-kubeconfig", err: quota("secrets", "demo-kubeconfig"),
			condition: kcReady, reason: v1alpha1.ReasonKubeconfigWriteFailed,
		},
	}
	for name, tc := range cases {
		for _, running := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, running %v", name, running), func(t *testing.T) {
				w := makeVC("demo").Key("demo-12345678").Provisioner(v1alpha1.ProvisionerCluster)
				if running {
					w = w.Running()
				}
				vc := w.Obj()
				setIdentity(vc)
				objs := []client.Object{vc.DeepCopy()}
				if _, svc := tc.kind.(*corev1.Service); !svc {
					// A Service with its address, so that the phases get past the endpoint.
					s := buildService(vc)
					s.Spec.ClusterIP = "10.96.0.10"
					objs = append(objs, s)
				}
				r, c, rec := newTestReconciler(t, refuseWrites(tc.kind, tc.name, tc.err), objs...)
				r.readyz = func(context.Context, string, adminCredentials) error { return nil }
				r.provisioners = map[v1alpha1.Provisioner]provisioner{
					v1alpha1.ProvisionerCluster: &clusterProvisioner{client: c, reader: c, scheme: c.Scheme()},
				}
				s := &scope{vc: vc, original: vc.DeepCopy(), storage: &etcdCreds{}}
				res, err := r.runPhases(testContext(t), s, []phase{
					{r.reconcileEndpoint, v1alpha1.ReasonProvisionFailed},
					{r.reconcilePKI, v1alpha1.ReasonPKIFailed},
					{r.reconcileControlPlane, v1alpha1.ReasonProvisionFailed},
					{r.reconcileKubeconfig, v1alpha1.ReasonKubeconfigWriteFailed},
				})
				if err != nil || res.RequeueAfter != retryFailure {
					t.Errorf("runPhases = %+v, %v; want a retry after %s", res, err, retryFailure)
				}
				if got := computePhase(vc); got != v1alpha1.PhaseFailed {
					t.Errorf("phase = %s, want Failed", got)
				}
				cond := meta.FindStatusCondition(vc.Status.Conditions, tc.condition)
				want := "the super cluster refused " + fmt.Sprintf("%T", tc.kind)[len("*v1."):] + " default/" + tc.name
				if cond == nil || cond.Status != isFalse || cond.Reason != tc.reason ||
					!strings.HasPrefix(cond.Message, want) || !strings.HasSuffix(cond.Message, tc.err.Error()) {
					t.Errorf("%s = %+v, want False %s %q…%q", tc.condition, cond, tc.reason, want, tc.err)
				}
				if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning "+tc.reason+" "+want) {
					t.Errorf("events = %q, want one Warning %s %s…", evs, tc.reason, want)
				}
			})
		}
	}
}

// refuseWrites makes the creations and updates of the object of name and
// kind's type fail with err.
func refuseWrites(kind client.Object, name string, err error) *interceptor.Funcs {
	match := func(obj client.Object) bool {
		return fmt.Sprintf("%T", obj) == fmt.Sprintf("%T", kind) && obj.GetName() == name
	}
	return &interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if match(obj) {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if match(obj) {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
	}
}

// TestRefusedControlPlanePod: a Deployment the super cluster accepts but
// whose pod its ReplicaSet cannot create (over a ResourceQuota, against
// the namespace's PodSecurity level), told by the Deployment's
// ReplicaFailure condition, makes the tenant Failed with that message,
// tried again every retryFailure; one whose old pod still serves is left
// to the health check.
func TestRefusedControlPlanePod(t *testing.T) {
	const msg = `pods "demo-apiserver-7d4b9c-x2x9z" is forbidden: exceeded quota: compute, requested: requests.memory=192Mi, used: requests.memory=1Gi, limited: requests.memory=1Gi`
	for name, tc := range map[string]struct {
		ready     int32
		wantPhase v1alpha1.VirtualClusterPhase
	}{
		"no pod":                   {0, v1alpha1.PhaseFailed},
		"the old pod still serves": {1, v1alpha1.PhaseRunning},
	} {
		t.Run(name, func(t *testing.T) {
			vc := makeVC("demo").Key("demo-12345678").Provisioner(v1alpha1.ProvisionerCluster).Running().Obj()
			dep := &appsv1.Deployment{ObjectMeta: objectMeta(vc, "demo-apiserver")}
			dep.Status.ReadyReplicas = tc.ready
			dep.Status.Conditions = []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: msg},
			}
			r, c, _ := newTestReconciler(t, nil, vc.DeepCopy(), dep)
			r.readyz = func(context.Context, string, adminCredentials) error {
				if tc.ready == 0 {
					return fmt.Errorf("dial tcp 10.96.0.10:443: connect: connection refused")
				}
				return nil
			}
			prov := &clusterProvisioner{client: c, reader: c, scheme: c.Scheme()}
			s := &scope{vc: vc, original: vc.DeepCopy(), prov: prov, storage: &etcdCreds{}, endpoint: endpoint{URL: vc.Status.Endpoint}}
			res, err := r.runPhases(testContext(t), s, []phase{{r.reconcileControlPlane, v1alpha1.ReasonProvisionFailed}})
			if got := computePhase(vc); got != tc.wantPhase {
				t.Errorf("phase = %s, want %s", got, tc.wantPhase)
			}
			if tc.wantPhase != v1alpha1.PhaseFailed {
				return
			}
			if err != nil || res.RequeueAfter != retryFailure {
				t.Errorf("runPhases = %+v, %v; want a retry after %s", res, err, retryFailure)
			}
			cp := meta.FindStatusCondition(vc.Status.Conditions, cpReady)
			const want = "the super cluster refuses the control plane's pod of Deployment default/demo-apiserver"
			if cp.Reason != v1alpha1.ReasonProvisionFailed || !strings.HasPrefix(cp.Message, want) || !strings.HasSuffix(cp.Message, msg) {
				t.Errorf("ControlPlaneReady = %s/%s %q, want ProvisionFailed %q…%q", cp.Status, cp.Reason, cp.Message, want, msg)
			}
		})
	}
}
