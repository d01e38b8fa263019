package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// TestHealthCheckFailureThreshold: a running tenant stays Running through
// fewer than DefaultFailureThreshold failed health checks in a row (the
// syncer serves only Running tenants), with each failure in the
// ControlPlaneReady message and a Warning event; the threshold-th takes it
// out of Running; an answered check starts the count again. A control
// plane that is starting waits as before.
func TestHealthCheckFailureThreshold(t *testing.T) {
	const (
		running  = v1alpha1.PhaseRunning
		starting = v1alpha1.PhaseProvisioning
	)
	cases := map[string]struct {
		vc     *v1alpha1.VirtualCluster
		checks string // a check per letter: o answered, x failed
		want   []v1alpha1.VirtualClusterPhase
	}{
		"one failed check keeps Running": {
			vc: runningVC(), checks: "x", want: []v1alpha1.VirtualClusterPhase{running},
		},
		"threshold failures in a row leave Running": {
			vc: runningVC(), checks: "xxx", want: []v1alpha1.VirtualClusterPhase{running, running, starting},
		},
		"an answered check in between starts the count again": {
			vc: runningVC(), checks: "xxoxxo", want: []v1alpha1.VirtualClusterPhase{running, running, running, running, running, running},
		},
		"back from unhealthy, the count starts from zero": {
			vc: runningVC(), checks: "xxxoxx", want: []v1alpha1.VirtualClusterPhase{running, running, starting, running, running, running},
		},
		"a control plane not yet running is not given the threshold": {
			vc:     makeVC("demo").Key("demo-12345678").Cond(cpReady, isFalse, v1alpha1.ReasonProvisioning).Obj(),
			checks: "x", want: []v1alpha1.VirtualClusterPhase{starting},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, _, rec := newTestReconciler(t, nil, tc.vc)
			var got []v1alpha1.VirtualClusterPhase
			for _, c := range tc.checks {
				checkControlPlane(t, r, tc.vc, c == 'o')
				got = append(got, computePhase(tc.vc))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("phase after each check %q (-want +got):\n%s", tc.checks, diff)
			}
			drainEvents(rec)
		})
	}
}

// TestHealthCheckFailureReported: a failed check of a running tenant is
// told in the ControlPlaneReady message (still True) and a Warning event,
// and checked again after retryHealthCheck; the threshold-th is
// ControlPlaneUnhealthy, polled like a starting control plane.
func TestHealthCheckFailureReported(t *testing.T) {
	vc := runningVC()
	r, _, rec := newTestReconciler(t, nil, vc)
	r.failureThreshold = 2
	if res := checkControlPlane(t, r, vc, false); res.RequeueAfter != retryHealthCheck {
		t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, retryHealthCheck)
	}
	cp := meta.FindStatusCondition(vc.Status.Conditions, cpReady)
	if cp.Status != isTrue || cp.Reason != v1alpha1.ReasonReady ||
		cp.Message != "still Running, but 1 resync(s) in a row failed (it leaves Running after 2): the tenant apiserver at https://192.0.2.1:7000 failed its health check: /readyz timed out" {
		t.Errorf("ControlPlaneReady = %s/%s %q", cp.Status, cp.Reason, cp.Message)
	}
	if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning ControlPlaneUnhealthy still Running, but 1 resync(s) in a row failed") {
		t.Errorf("events = %q, want one Warning ControlPlaneUnhealthy", evs)
	}
	if res := checkControlPlane(t, r, vc, false); res.RequeueAfter != retryStarting {
		t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, retryStarting)
	}
	cp = meta.FindStatusCondition(vc.Status.Conditions, cpReady)
	if cp.Status != isFalse || cp.Reason != v1alpha1.ReasonControlPlaneUnhealthy ||
		cp.Message != "the tenant apiserver at https://192.0.2.1:7000 failed its health check: /readyz timed out (2 resyncs in a row failed)" {
		t.Errorf("ControlPlaneReady = %s/%s %q", cp.Status, cp.Reason, cp.Message)
	}
}

// TestHealthCheckFailuresForgotten: a deleted VirtualCluster's count goes,
// so one created again under its name starts from zero.
func TestHealthCheckFailuresForgotten(t *testing.T) {
	vc := makeVC("demo").Key("demo-12345678").Finalizer().Deleting().Obj()
	r, c, _ := newTestReconciler(t, nil, vc)
	key := client.ObjectKeyFromObject(vc)
	r.resyncFailures.add(key)
	r.resyncFailures.add(key)
	reconcileUntilGone(t, r, c, vc)
	if n := r.resyncFailures.add(key); n != 1 {
		t.Errorf("failures after the deletion = %d, want them forgotten", n-1)
	}
}

func runningVC() *v1alpha1.VirtualCluster {
	return makeVC("demo").Key("demo-12345678").Running().Obj()
}

// checkControlPlane runs the phases of reconcileNormal that follow the
// storage and the PKI against a control plane that is up (not restarted)
// and whose health check answers or not.
func checkControlPlane(t *testing.T, r *Reconciler, vc *v1alpha1.VirtualCluster, answers bool) ctrl.Result {
	t.Helper()
	ctx := testContext(t)
	r.readyz = func(context.Context, string, adminCredentials) error {
		if answers {
			return nil
		}
		return errors.New("/readyz timed out")
	}
	s := &scope{vc: vc, original: vc.DeepCopy(), prov: &stoppingProvisioner{}, storage: &etcdCreds{}, endpoint: endpoint{URL: vc.Status.Endpoint}}
	res, _ := r.runPhases(ctx, s, []phase{
		{r.reconcileControlPlane, v1alpha1.ReasonProvisionFailed},
		{r.reconcileKubeconfig, v1alpha1.ReasonKubeconfigWriteFailed},
	})
	return res
}

// TestStorageFailureThreshold: a running tenant whose etcd does not answer
// a resync (an external one nobody listens at) stays Running through fewer
// than DefaultFailureThreshold failed resyncs in a row; the threshold-th
// takes it out of Running (Pending: StorageUnavailable) unless its control
// plane answers. A configuration error gets no grace: a credentials Secret
// that is gone (waiting does not bring it back) makes it Failed at once.
func TestStorageFailureThreshold(t *testing.T) {
	const (
		running = v1alpha1.PhaseRunning
		pending = v1alpha1.PhasePending
		failed  = v1alpha1.PhaseFailed
	)
	cases := map[string]struct {
		secret  bool
		answers bool                           // the control plane's health check
		want    []v1alpha1.VirtualClusterPhase // after each resync
	}{
		"one failed resync keeps Running":                 {secret: true, want: []v1alpha1.VirtualClusterPhase{running}},
		"threshold failed resyncs in a row leave Running": {secret: true, want: []v1alpha1.VirtualClusterPhase{running, running, pending}},
		"the control plane answers, it stays Running": {
			secret: true, answers: true, want: []v1alpha1.VirtualClusterPhase{running, running, running, running},
		},
		"a credentials Secret gone leaves at once": {secret: false, want: []v1alpha1.VirtualClusterPhase{failed}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			vc, objs := runningExternalEtcdVC(tc.secret)
			setIdentity(vc)
			r, c, rec := newTestReconciler(t, nil, append(objs, &corev1.Secret{ObjectMeta: objectMeta(vc, vc.PKISecretName())})...)
			r.readyz = func(context.Context, string, adminCredentials) error {
				if tc.answers {
					return nil
				}
				return errors.New("/readyz timed out")
			}
			var got []v1alpha1.VirtualClusterPhase
			for range tc.want {
				resyncUnreachableEtcd(t, r, vc)
				if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), vc); err != nil {
					t.Fatal(err)
				}
				got = append(got, vc.Status.Phase)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("phase after each resync (-want +got):\n%s", diff)
			}
			drainEvents(rec)
		})
	}
}

// TestStorageFailureReported: a failed resync of a running tenant below
// the threshold is told in the ControlPlaneReady message (still True) and
// a Warning StorageUnavailable event, and tried again after
// retryHealthCheck.
func TestStorageFailureReported(t *testing.T) {
	vc, objs := runningExternalEtcdVC(true)
	r, c, rec := newTestReconciler(t, nil, objs...)
	if res := resyncUnreachableEtcd(t, r, vc); res.RequeueAfter != retryHealthCheck {
		t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, retryHealthCheck)
	}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), vc); err != nil {
		t.Fatal(err)
	}
	const want = "still Running, but 1 resync(s) in a row failed (it leaves Running after 3): etcd [http://127.0.0.1:1]: the auth status check failed: "
	cp := meta.FindStatusCondition(vc.Status.Conditions, cpReady)
	if cp.Status != isTrue || cp.Reason != v1alpha1.ReasonReady || !strings.HasPrefix(cp.Message, want) {
		t.Errorf("ControlPlaneReady = %s/%s %q, want True/Ready %q...", cp.Status, cp.Reason, cp.Message, want)
	}
	if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning StorageUnavailable "+want) {
		t.Errorf("events = %q, want one Warning StorageUnavailable", evs)
	}
}

// runningExternalEtcdVC is a running tenant of an external etcd nobody
// listens at, and the objects of the fake client: it and, when secret, its
// credentials Secret.
func runningExternalEtcdVC(secret bool) (*v1alpha1.VirtualCluster, []client.Object) {
	vc := makeVC("demo").Key("demo-12345678").EtcdStorage("etcd-creds", "http://127.0.0.1:1").Finalizer().
		Annotation(annotationEtcdInitialized, "true").Running().Obj()
	objs := []client.Object{vc.DeepCopy()}
	if secret {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "etcd-creds", Namespace: "default"}})
	}
	return vc, objs
}

// resyncUnreachableEtcd reconciles vc once, with a short deadline: etcd
// calls wait for a connection until theirs.
func resyncUnreachableEtcd(t *testing.T, r *Reconciler, vc *v1alpha1.VirtualCluster) ctrl.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(testContext(t), 200*time.Millisecond)
	defer cancel()
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(vc)})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return res
}

// failOn fails the reads (or, with writes, the creations) of the object of
// name and kind's type with a timeout.
func failOn(kind client.Object, name string, writes bool) *interceptor.Funcs {
	timeout := apierrors.NewTimeoutError("request timed out", 1)
	fail := func(obj client.Object, objName string, write bool) bool {
		return write == writes && fmt.Sprintf("%T", obj) == fmt.Sprintf("%T", kind) && objName == name
	}
	return &interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if fail(obj, key.Name, false) {
				return timeout
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if fail(obj, obj.GetName(), true) {
				return timeout
			}
			return c.Create(ctx, obj, opts...)
		},
	}
}

func pkiThenControlPlane(r *Reconciler) []phase {
	return []phase{{r.reconcilePKI, v1alpha1.ReasonPKIFailed}, {r.reconcileControlPlane, v1alpha1.ReasonProvisionFailed}}
}

func controlPlaneThenKubeconfig(r *Reconciler) []phase {
	return []phase{{r.reconcileControlPlane, v1alpha1.ReasonProvisionFailed}, {r.reconcileKubeconfig, v1alpha1.ReasonKubeconfigWriteFailed}}
}

// TestResyncFailureThreshold: the other steps of a running tenant's resync
// that call the super cluster's API get the same threshold when the call
// fails (here: times out). At the threshold, and at each failed resync
// after it, the control plane is checked: while it answers (with the
// credentials of its PKI Secret), the tenant stays Running, with the
// failure in the condition's message; once it does not, the tenant leaves
// Running and stays out while the failures go on. A Secret of the tenant's
// name that is not its own is a configuration error and takes the tenant
// out of Running at once.
func TestResyncFailureThreshold(t *testing.T) {
	const (
		running = v1alpha1.PhaseRunning
		failed  = v1alpha1.PhaseFailed
	)
	cases := map[string]struct {
		funcs   *interceptor.Funcs
		objs    []client.Object
		cluster bool // the cluster provisioner, else one that runs nothing
		phases  func(*Reconciler) []phase
		answers string // whether the control plane answers, a letter per resync: o it does, x not
		want    []v1alpha1.VirtualClusterPhase
		event   string // the start of every event
		message string // of ControlPlaneReady after the last resync
	}{
		"the PKI Secret cannot be read, nor the credentials of the health check": {
			funcs: failOn(&corev1.Secret{}, "demo-pki", false), phases: pkiThenControlPlane, answers: "oooo",
			want:    []v1alpha1.VirtualClusterPhase{running, running, failed, failed},
			event:   "Warning PKIFailed ",
			message: "reading Secret default/demo-pki: Timeout: request timed out",
		},
		"the control plane's Deployment cannot be read, the control plane answers": {
			funcs: failOn(&appsv1.Deployment{}, "demo-apiserver", false), cluster: true, phases: controlPlaneThenKubeconfig, answers: "oooo",
			want:  []v1alpha1.VirtualClusterPhase{running, running, running, running},
			event: "Warning ProvisionFailed ",
			message: "still Running (the tenant apiserver at https://192.0.2.1:7000 is ready), but 4 resyncs in a row failed: " +
				"applying Deployment default/demo-apiserver: Timeout: request timed out",
		},
		"the control plane's Deployment cannot be read, the control plane stops answering": {
			funcs: failOn(&appsv1.Deployment{}, "demo-apiserver", false), cluster: true, phases: controlPlaneThenKubeconfig, answers: "ooox",
			want:  []v1alpha1.VirtualClusterPhase{running, running, running, failed},
			event: "Warning ProvisionFailed ",
			message: "applying Deployment default/demo-apiserver: Timeout: request timed out; " +
				"and the tenant apiserver at https://192.0.2.1:7000 failed its health check: /readyz timed out (4 resyncs in a row failed)",
		},
		"the control plane's Deployment cannot be read, the control plane does not answer": {
			funcs: failOn(&appsv1.Deployment{}, "demo-apiserver", false), cluster: true, phases: controlPlaneThenKubeconfig, answers: "xxxx",
			want:    []v1alpha1.VirtualClusterPhase{running, running, failed, failed},
			event:   "Warning ProvisionFailed ",
			message: "applying Deployment default/demo-apiserver: Timeout: request timed out",
		},
		"the kubeconfig Secret cannot be written, the control plane answered": {
			funcs: failOn(&corev1.Secret{}, "demo-kubeconfig", true), phases: controlPlaneThenKubeconfig, answers: "oooo",
			want:  []v1alpha1.VirtualClusterPhase{running, running, running, running},
			event: "Warning KubeconfigWriteFailed ",
		},
		"a foreign kubeconfig Secret leaves at once": {
			objs:   []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "demo-kubeconfig", Namespace: "default"}}},
			phases: controlPlaneThenKubeconfig, answers: "o",
			want:  []v1alpha1.VirtualClusterPhase{failed},
			event: "Warning KubeconfigWriteFailed Secret default/demo-kubeconfig exists but does not belong to this virtual cluster",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			vc := runningVC()
			setIdentity(vc)
			pki := &corev1.Secret{ObjectMeta: objectMeta(vc, vc.PKISecretName())}
			r, c, rec := newTestReconciler(t, tc.funcs, append(tc.objs, vc.DeepCopy(), pki)...)
			var prov provisioner = &stoppingProvisioner{}
			if tc.cluster {
				prov = &clusterProvisioner{client: c, reader: c, scheme: c.Scheme()}
			}
			var got []v1alpha1.VirtualClusterPhase
			for i, a := range tc.answers {
				r.readyz = func(context.Context, string, adminCredentials) error {
					if a == 'o' {
						return nil
					}
					return errors.New("/readyz timed out")
				}
				s := &scope{vc: vc, original: vc.DeepCopy(), prov: prov, storage: &etcdCreds{}, endpoint: endpoint{URL: vc.Status.Endpoint}}
				res, _ := r.runPhases(testContext(t), s, tc.phases(r))
				got = append(got, computePhase(vc))
				if got[i] == running && res.RequeueAfter != retryHealthCheck {
					t.Errorf("resync %d: RequeueAfter = %s, want %s", i+1, res.RequeueAfter, retryHealthCheck)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("phase after each resync %q (-want +got):\n%s", tc.answers, diff)
			}
			if cp := meta.FindStatusCondition(vc.Status.Conditions, cpReady); tc.message != "" && cp.Message != tc.message {
				t.Errorf("ControlPlaneReady = %s/%s %q, want the message %q", cp.Status, cp.Reason, cp.Message, tc.message)
			}
			evs := drainEvents(rec)
			if len(evs) != len(tc.want) {
				t.Errorf("events = %q, want one per resync", evs)
			}
			for _, ev := range evs {
				if !strings.HasPrefix(ev, tc.event) {
					t.Errorf("event %q, want it to start with %q", ev, tc.event)
				}
			}
		})
	}
}

// TestTransientFailureOfNewTenant: a tenant that has not run yet, whose
// step fails for a reason that may pass by itself (a call to the super
// cluster's API that timed out), is not Failed, which says something
// outside must change (and ends `vnest create --wait`): it stays
// Provisioning, however often it fails, with the condition concerned
// False/Retrying holding the failure and a Warning event, and is tried
// again with the controller's back-off.
func TestTransientFailureOfNewTenant(t *testing.T) {
	cases := map[string]struct {
		funcs     *interceptor.Funcs
		cluster   bool
		phases    func(*Reconciler) []phase
		condition string
		message   string
	}{
		"the PKI Secret cannot be read": {
			funcs: failOn(&corev1.Secret{}, "demo-pki", false), phases: pkiThenControlPlane,
			condition: cpReady, message: "reading Secret default/demo-pki: Timeout: request timed out",
		},
		"the PKI Secret cannot be written": {
			funcs: failOn(&corev1.Secret{}, "demo-pki", true), phases: pkiThenControlPlane,
			condition: cpReady, message: "writing Secret default/demo-pki: Timeout: request timed out",
		},
		"the control plane's Deployment cannot be read": {
			funcs: failOn(&appsv1.Deployment{}, "demo-apiserver", false), cluster: true, phases: controlPlaneThenKubeconfig,
			condition: cpReady, message: "applying Deployment default/demo-apiserver: Timeout: request timed out",
		},
		"the kubeconfig Secret cannot be written": {
			funcs: failOn(&corev1.Secret{}, "demo-kubeconfig", true), phases: controlPlaneThenKubeconfig,
			condition: kcReady, message: "writing Secret default/demo-kubeconfig: Timeout: request timed out",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			vc := makeVC("demo").Key("demo-12345678").Cond(cpReady, isFalse, v1alpha1.ReasonProvisioning).Obj()
			setIdentity(vc)
			vc.Status.Endpoint = "https://192.0.2.1:7000"
			r, c, rec := newTestReconciler(t, tc.funcs, vc.DeepCopy())
			r.readyz = func(context.Context, string, adminCredentials) error { return nil }
			prov := func() provisioner {
				if tc.cluster {
					return &clusterProvisioner{client: c, reader: c, scheme: c.Scheme()}
				}
				return &stoppingProvisioner{}
			}()
			for i := range DefaultFailureThreshold + 1 {
				s := &scope{vc: vc, original: vc.DeepCopy(), prov: prov, storage: &etcdCreds{}, endpoint: endpoint{URL: vc.Status.Endpoint}}
				if _, err := r.runPhases(testContext(t), s, tc.phases(r)); err == nil {
					t.Errorf("resync %d: no error for the controller's back-off", i+1)
				}
				if got := computePhase(vc); got != v1alpha1.PhaseProvisioning {
					t.Errorf("phase after %d failed resync(s) = %s, want Provisioning", i+1, got)
				}
				cond := meta.FindStatusCondition(vc.Status.Conditions, tc.condition)
				if cond == nil || cond.Status != isFalse || cond.Reason != v1alpha1.ReasonRetrying || !strings.HasSuffix(cond.Message, tc.message) {
					t.Errorf("%s = %+v, want False/%s …%q", tc.condition, cond, v1alpha1.ReasonRetrying, tc.message)
				}
			}
			if evs := drainEvents(rec); len(evs) != DefaultFailureThreshold+1 || !strings.HasPrefix(evs[0], "Warning "+v1alpha1.ReasonRetrying+" ") ||
				!strings.HasSuffix(evs[0], tc.message) {
				t.Errorf("events = %q, want one Warning %s per resync", evs, v1alpha1.ReasonRetrying)
			}
		})
	}
}
