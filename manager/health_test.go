package manager

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
		cp.Message != "the tenant apiserver at https://192.0.2.1:7000 was ready, but 1 health check(s) in a row failed (it counts as unhealthy after 2): /readyz timed out" {
		t.Errorf("ControlPlaneReady = %s/%s %q", cp.Status, cp.Reason, cp.Message)
	}
	if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning ControlPlaneUnhealthy the tenant apiserver at https://192.0.2.1:7000 was ready, but 1 health check(s)") {
		t.Errorf("events = %q, want one Warning ControlPlaneUnhealthy", evs)
	}
	if res := checkControlPlane(t, r, vc, false); res.RequeueAfter != retryStarting {
		t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, retryStarting)
	}
	cp = meta.FindStatusCondition(vc.Status.Conditions, cpReady)
	if cp.Status != isFalse || cp.Reason != v1alpha1.ReasonControlPlaneUnhealthy ||
		cp.Message != "waiting for the tenant apiserver at https://192.0.2.1:7000 to be ready (2 health checks in a row failed): /readyz timed out" {
		t.Errorf("ControlPlaneReady = %s/%s %q", cp.Status, cp.Reason, cp.Message)
	}
}

// TestHealthCheckFailuresForgotten: a deleted VirtualCluster's count goes,
// so one created again under its name starts from zero.
func TestHealthCheckFailuresForgotten(t *testing.T) {
	vc := makeVC("demo").Key("demo-12345678").Finalizer().Deleting().Obj()
	r, c, _ := newTestReconciler(t, nil, vc)
	key := client.ObjectKeyFromObject(vc)
	r.healthFailures.add(key)
	r.healthFailures.add(key)
	reconcileUntilGone(t, r, c, vc)
	if n := r.healthFailures.add(key); n != 1 {
		t.Errorf("failures after the deletion = %d, want them forgotten", n-1)
	}
}

func runningVC() *v1alpha1.VirtualCluster {
	vc := makeVC("demo").Key("demo-12345678").Obj()
	vc.Status.Endpoint, vc.Status.KubeconfigSecretName = "https://192.0.2.1:7000", vc.KubeconfigSecretName()
	setControlPlaneReady(vc)
	setKubeconfigReady(vc)
	return vc
}

// checkControlPlane runs the phases of reconcileNormal that follow the
// storage and the PKI against a control plane that is up (not restarted)
// and whose health check answers or not, and records a failure as
// reconcileNormal does.
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
	err := r.reconcileControlPlane(ctx, s)
	if err == nil {
		err = r.reconcileKubeconfig(ctx, s)
	}
	if err == nil {
		return ctrl.Result{RequeueAfter: resyncRunning}
	}
	res, _ := r.phaseFailed(ctx, vc, asPhaseError(err, v1alpha1.ReasonProvisionFailed), err)
	return res
}
