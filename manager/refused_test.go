package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
)

// TestRefusedWrites: an object the manager writes (the cluster
// provisioner's Service and Deployment, the PKI and kubeconfig Secrets)
// that the super cluster refuses for its content (Invalid; Forbidden by a
// ResourceQuota) makes a tenant that is not Running Failed at once (no
// failure threshold: sending it again does not help), with the apiserver's
// message, and is tried again every retryFailure (a quota may come to fit)
// rather than returned to the controller's back-off. A Running tenant
// whose control plane still answers stays Running (the syncer serves only
// Running tenants): the condition the write concerns stays True with the
// refusal in its message, and a Warning event says it.
func TestRefusedWrites(t *testing.T) {
	invalid := func(kind, name string) error {
		return apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: kind}, name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "template", "spec", "containers").Index(0).Child("resources", "requests").Key("example.com/gpu"),
				"1", "must be equal to example.com/gpu limit of 0"),
		})
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
			kind: &corev1.Service{}, name: "demo-apiserver", err: quotaRefusal("services", "demo-apiserver"),
			condition: cpReady, reason: v1alpha1.ReasonProvisionFailed,
		},
		"the PKI Secret is over the quota": {
			kind: &corev1.Secret{}, name: "demo-pki", err: quotaRefusal("secrets", "demo-pki"),
			condition: cpReady, reason: v1alpha1.ReasonPKIFailed,
		},
		"the kubeconfig Secret is over the quota": {
			kind: &corev1.Secret{}, name: "demo-kubeconfig", err: quotaRefusal("secrets", "demo-kubeconfig"),
			condition: kcReady, reason: v1alpha1.ReasonKubeconfigWriteFailed,
		},
	}
	for name, tc := range cases {
		for _, running := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, running %v", name, running), func(t *testing.T) {
				rt := newRefusedTenant(t, tc.kind, tc.name, tc.err, running)
				res, err := rt.resync(t, true)
				if err != nil || res.RequeueAfter != retryFailure {
					t.Errorf("runPhases = %+v, %v; want a retry after %s", res, err, retryFailure)
				}
				want := "the super cluster refused " + fmt.Sprintf("%T", tc.kind)[len("*v1."):] + " default/" + tc.name
				wantPhase, wantStatus, wantReason := v1alpha1.PhaseFailed, isFalse, tc.reason
				if running {
					want = "still Running (the tenant apiserver at " + rt.vc.Status.Endpoint + " is ready), but " + want
					wantPhase, wantStatus, wantReason = v1alpha1.PhaseRunning, isTrue, v1alpha1.ReasonReady
				}
				if got := computePhase(rt.vc); got != wantPhase {
					t.Errorf("phase = %s, want %s", got, wantPhase)
				}
				cond := meta.FindStatusCondition(rt.vc.Status.Conditions, tc.condition)
				if cond == nil || cond.Status != wantStatus || cond.Reason != wantReason ||
					!strings.HasPrefix(cond.Message, want) || !strings.HasSuffix(cond.Message, tc.err.Error()) {
					t.Errorf("%s = %+v, want %s/%s %q…%q", tc.condition, cond, wantStatus, wantReason, want, tc.err)
				}
				if evs := drainEvents(rt.rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning "+tc.reason+" "+want) {
					t.Errorf("events = %q, want one Warning %s %s…", evs, tc.reason, want)
				}
			})
		}
	}
}

// TestRefusedWhileRunningUnhealthy: a Running tenant whose resync the
// super cluster refuses and whose control plane does not answer its health
// check is given the failure threshold, as for any failed health check;
// the threshold-th makes it Failed with the refusal's reason (nothing
// serves it, and what would change that is refused). A check answered in
// between starts the count again.
func TestRefusedWhileRunningUnhealthy(t *testing.T) {
	const (
		running = v1alpha1.PhaseRunning
		failed  = v1alpha1.PhaseFailed
	)
	for name, tc := range map[string]struct {
		kind   client.Object
		name   string
		reason string
		checks string // a check per letter: o answered, x failed
		want   []v1alpha1.VirtualClusterPhase
	}{
		"the Deployment, threshold failed checks": {
			kind: &appsv1.Deployment{}, name: "demo-apiserver", reason: v1alpha1.ReasonProvisionFailed,
			checks: "xxx", want: []v1alpha1.VirtualClusterPhase{running, running, failed},
		},
		"the Service, threshold failed checks": {
			kind: &corev1.Service{}, name: "demo-apiserver", reason: v1alpha1.ReasonProvisionFailed,
			checks: "xxx", want: []v1alpha1.VirtualClusterPhase{running, running, failed},
		},
		"the PKI Secret, threshold failed checks": {
			kind: &corev1.Secret{}, name: "demo-pki", reason: v1alpha1.ReasonPKIFailed,
			checks: "xxx", want: []v1alpha1.VirtualClusterPhase{running, running, failed},
		},
		"an answered check in between": {
			kind: &appsv1.Deployment{}, name: "demo-apiserver", reason: v1alpha1.ReasonProvisionFailed,
			checks: "xxoxx", want: []v1alpha1.VirtualClusterPhase{running, running, running, running, running},
		},
	} {
		t.Run(name, func(t *testing.T) {
			rt := newRefusedTenant(t, tc.kind, tc.name, quotaRefusal("things", tc.name), true)
			var got []v1alpha1.VirtualClusterPhase
			for i, c := range tc.checks {
				res, _ := rt.resync(t, c == 'o')
				got = append(got, computePhase(rt.vc))
				if wantRetry := retryHealthCheck; c == 'x' && i < len(tc.checks)-1 && res.RequeueAfter != wantRetry {
					t.Errorf("check %d: RequeueAfter = %s, want %s", i+1, res.RequeueAfter, wantRetry)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("phase after each resync %q (-want +got):\n%s", tc.checks, diff)
			}
			if tc.want[len(tc.want)-1] != failed {
				return
			}
			cp := meta.FindStatusCondition(rt.vc.Status.Conditions, cpReady)
			wantMsg := "; and the tenant apiserver at " + rt.vc.Status.Endpoint + " failed its health check: connection refused (3 resyncs in a row failed)"
			if cp.Status != isFalse || cp.Reason != tc.reason || !strings.HasPrefix(cp.Message, "the super cluster refused ") || !strings.HasSuffix(cp.Message, wantMsg) {
				t.Errorf("ControlPlaneReady = %s/%s %q, want False/%s \"the super cluster refused …%s\"", cp.Status, cp.Reason, cp.Message, tc.reason, wantMsg)
			}
		})
	}
}

func quotaRefusal(resource, name string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, name,
		fmt.Errorf("exceeded quota: objects, requested: count/%s=1, used: count/%s=4, limited: count/%s=4", resource, resource, resource))
}

// refusedTenant is a tenant of the cluster provisioner whose writes of
// one object the super cluster refuses.
type refusedTenant struct {
	r   *Reconciler
	vc  *v1alpha1.VirtualCluster
	rec *events.FakeRecorder
	ca  []byte // of the PKI Secret a running tenant has
}

// newRefusedTenant makes a refusedTenant, a running one with a PKI Secret
// whose serving certificate is not the one the resync wants (it is
// written).
func newRefusedTenant(t *testing.T, kind client.Object, name string, refusal error, running bool, more ...client.Object) *refusedTenant {
	t.Helper()
	w := makeVC("demo").Key("demo-12345678").Provisioner(v1alpha1.ProvisionerCluster)
	if running {
		w = w.Running()
	}
	vc := w.Obj()
	setIdentity(vc)
	objs := append([]client.Object{vc.DeepCopy()}, more...)
	if _, svc := kind.(*corev1.Service); !svc {
		// A Service with its address, so that the phases get past the endpoint.
		s := buildService(vc)
		s.Spec.ClusterIP = "10.96.0.10"
		objs = append(objs, s)
	}
	rt := &refusedTenant{vc: vc}
	if running {
		vc.Status.Endpoint = "https://10.96.0.10:443" // the Service's
		data, err := buildTenantPKI(nil, pkiRequest{Serving: servingSpec(vc, layout.ServingNames{}), EtcdUser: EtcdUser(vc.Status.ClusterKey), Etcd: &etcdCreds{}})
		if err != nil {
			t.Fatal(err)
		}
		rt.ca = data[layout.CAName+".crt"]
		objs = append(objs, &corev1.Secret{ObjectMeta: objectMeta(vc, vc.PKISecretName()), Data: data})
	}
	r, c, rec := newTestReconciler(t, refuseWrites(kind, name, refusal), objs...)
	r.provisioners = map[v1alpha1.Provisioner]provisioner{
		v1alpha1.ProvisionerCluster: &clusterProvisioner{client: c, reader: c, scheme: c.Scheme()},
	}
	rt.r, rt.rec = r, rec
	return rt
}

// resync runs the phases of reconcileNormal after the storage, with a
// control plane that answers its health check or not; one checked with
// credentials of another CA than the PKI Secret's does not.
func (rt *refusedTenant) resync(t *testing.T, answers bool) (ctrl.Result, error) {
	t.Helper()
	r := rt.r
	r.readyz = func(_ context.Context, _ string, admin adminCredentials) error {
		if !answers {
			return errors.New("connection refused")
		}
		if rt.ca != nil && !bytes.Equal(admin.CA, rt.ca) {
			return errors.New("x509: certificate signed by unknown authority")
		}
		return nil
	}
	s := &scope{vc: rt.vc, original: rt.vc.DeepCopy(), storage: &etcdCreds{}}
	return r.runPhases(testContext(t), s, []phase{
		{r.reconcileEndpoint, v1alpha1.ReasonProvisionFailed},
		{r.reconcilePKI, v1alpha1.ReasonPKIFailed},
		{r.reconcileControlPlane, v1alpha1.ReasonProvisionFailed},
		{r.reconcileKubeconfig, v1alpha1.ReasonKubeconfigWriteFailed},
	})
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

// TestNamespaceTerminating: the namespace controller deletes what is in a
// namespace being deleted one kind after another, so a VirtualCluster may
// be reconciled after its objects went and before its own turn: what the
// manager creates again is refused (NamespaceTerminating), the control
// plane's pod is refused too, and the control plane stops answering. That
// is the deletion at work: the phase is Terminating (both conditions
// Deleting, with what failed), not Failed, and there is no Warning.
func TestNamespaceTerminating(t *testing.T) {
	now := metav1.Now()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", DeletionTimestamp: &now, Finalizers: []string{"test"}}}
	terminating := func(resource, name string) error {
		// As the NamespaceLifecycle admission plugin makes it.
		err := apierrors.NewForbidden(schema.GroupResource{Resource: resource}, name,
			errors.New("unable to create new content in namespace default because it is being terminated"))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes,
			metav1.StatusCause{Type: corev1.NamespaceTerminatingCause, Message: "namespace default is being terminated", Field: "metadata.namespace"})
		return err
	}
	const prefix = "namespace default is being deleted, and this VirtualCluster with it: "
	for name, tc := range map[string]struct {
		kind    client.Object
		name    string
		running bool
		pod     bool // the Deployment is there, without a ready pod: its ReplicaSet's is refused
		want    string
	}{
		"a new tenant's PKI Secret": {
			kind: &corev1.Secret{}, name: "demo-pki",
			want: prefix + "the super cluster refused Secret default/demo-pki",
		},
		"a running tenant's Deployment, its control plane not answering": {
			kind: &appsv1.Deployment{}, name: "demo-apiserver", running: true,
			want: prefix + "the super cluster refused Deployment default/demo-apiserver",
		},
		"a tenant's control-plane pod": {
			kind: &corev1.Secret{}, name: "none", pod: true,
			want: prefix + "the super cluster refuses the control plane's pod of Deployment default/demo-apiserver",
		},
	} {
		t.Run(name, func(t *testing.T) {
			more := []client.Object{ns}
			if tc.pod {
				vc := makeVC("demo").Key("demo-12345678").Obj()
				dep := &appsv1.Deployment{ObjectMeta: objectMeta(vc, "demo-apiserver")}
				dep.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
					Reason: "FailedCreate", Message: terminating("pods", "demo-apiserver-7d4b9c-x2x9z").Error()}}
				more = append(more, dep)
			}
			rt := newRefusedTenant(t, tc.kind, tc.name, terminating("things", tc.name), tc.running, more...)
			res, err := rt.resync(t, false)
			if err != nil || res.RequeueAfter != retryFailure {
				t.Errorf("runPhases = %+v, %v; want a retry after %s", res, err, retryFailure)
			}
			if got := computePhase(rt.vc); got != v1alpha1.PhaseTerminating {
				t.Errorf("phase = %s, want Terminating", got)
			}
			for _, typ := range []string{cpReady, kcReady} {
				if c := meta.FindStatusCondition(rt.vc.Status.Conditions, typ); c == nil || c.Status != isFalse ||
					c.Reason != v1alpha1.ReasonDeleting || !strings.HasPrefix(c.Message, tc.want) {
					t.Errorf("%s = %+v, want False/Deleting %q…", typ, c, tc.want)
				}
			}
			if evs := drainEvents(rt.rec); len(evs) > 0 {
				t.Errorf("events = %q, want none", evs)
			}
		})
	}
}
