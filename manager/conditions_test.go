package manager

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

const (
	cpReady = v1alpha1.ConditionControlPlaneReady
	kcReady = v1alpha1.ConditionKubeconfigReady
	syncing = v1alpha1.ConditionSyncing
	isTrue  = metav1.ConditionTrue
	isFalse = metav1.ConditionFalse
)

func TestComputePhase(t *testing.T) {
	cases := map[string]struct {
		vc   *v1alpha1.VirtualCluster
		want v1alpha1.VirtualClusterPhase
	}{
		"new":                       {makeVC("a").Obj(), v1alpha1.PhasePending},
		"deleting wins":             {makeVC("a").Deleting().Cond(cpReady, isTrue, "Ready").Cond(kcReady, isTrue, "Ready").Obj(), v1alpha1.PhaseTerminating},
		"its namespace is deleted":  {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonDeleting).Cond(kcReady, isFalse, v1alpha1.ReasonDeleting).Obj(), v1alpha1.PhaseTerminating},
		"both ready":                {makeVC("a").Cond(cpReady, isTrue, "Ready").Cond(kcReady, isTrue, "Ready").Obj(), v1alpha1.PhaseRunning},
		"syncing does not matter":   {makeVC("a").Cond(cpReady, isTrue, "Ready").Cond(kcReady, isTrue, "Ready").Cond(syncing, isFalse, "x").Obj(), v1alpha1.PhaseRunning},
		"kubeconfig pending":        {makeVC("a").Cond(cpReady, isTrue, "Ready").Obj(), v1alpha1.PhaseProvisioning},
		"kubeconfig write failed":   {makeVC("a").Cond(cpReady, isTrue, "Ready").Cond(kcReady, isFalse, v1alpha1.ReasonKubeconfigWriteFailed).Obj(), v1alpha1.PhaseFailed},
		"starting":                  {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonProvisioning).Obj(), v1alpha1.PhaseProvisioning},
		"unhealthy":                 {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonControlPlaneUnhealthy).Obj(), v1alpha1.PhaseProvisioning},
		"credentials invalid":       {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonCredentialsInvalid).Obj(), v1alpha1.PhaseFailed},
		"pki failed":                {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonPKIFailed).Obj(), v1alpha1.PhaseFailed},
		"provision failed":          {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonProvisionFailed).Obj(), v1alpha1.PhaseFailed},
		"storage unavailable waits": {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonStorageUnavailable).Obj(), v1alpha1.PhasePending},
		"retrying":                  {makeVC("a").Cond(cpReady, isFalse, v1alpha1.ReasonRetrying).Obj(), v1alpha1.PhaseProvisioning},
		"kubeconfig retrying":       {makeVC("a").Cond(cpReady, isTrue, "Ready").Cond(kcReady, isFalse, v1alpha1.ReasonRetrying).Obj(), v1alpha1.PhaseProvisioning},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := computePhase(tc.vc); got != tc.want {
				t.Errorf("computePhase = %s, want %s", got, tc.want)
			}
		})
	}
}

// condition is what the tests compare of a metav1.Condition.
type condition struct {
	Type, Reason, Message string
	Status                metav1.ConditionStatus
	ObservedGeneration    int64
}

func conditionsOf(vc *v1alpha1.VirtualCluster) []condition {
	var out []condition
	for _, c := range vc.Status.Conditions {
		out = append(out, condition{c.Type, c.Reason, c.Message, c.Status, c.ObservedGeneration})
	}
	return out
}

func TestSetFailed(t *testing.T) {
	waitCP := condition{kcReady, v1alpha1.ReasonWaitingForControlPlane, "the kubeconfig is written once the control plane is ready", isFalse, 1}
	cases := map[string]struct {
		vc   *v1alpha1.VirtualCluster
		err  *phaseError
		want []condition
	}{
		"storage failure on a new object": {
			vc:   makeVC("a").Obj(),
			err:  failure(v1alpha1.ReasonCredentialsInvalid, "Secret default/x not found"),
			want: []condition{{cpReady, v1alpha1.ReasonCredentialsInvalid, "Secret default/x not found", isFalse, 1}, waitCP},
		},
		"running cluster loses its control plane": {
			vc:   makeVC("a").Cond(cpReady, isTrue, "Ready").Cond(kcReady, isTrue, "Ready").Obj(),
			err:  &phaseError{reason: v1alpha1.ReasonControlPlaneUnhealthy, message: "no answer"},
			want: []condition{{cpReady, v1alpha1.ReasonControlPlaneUnhealthy, "no answer", isFalse, 1}, waitCP},
		},
		"a failed health check below the threshold only changes the message": {
			vc:   makeVC("a").Cond(cpReady, isTrue, "Ready").Cond(kcReady, isTrue, "Ready").Obj(),
			err:  graced(&phaseError{reason: v1alpha1.ReasonControlPlaneUnhealthy, message: "timeout"}, 1, 3),
			want: []condition{{cpReady, v1alpha1.ReasonReady, "still Running, but 1 resync(s) in a row failed (it leaves Running after 3): timeout", isTrue, 1}, {kcReady, "Ready", "", isTrue, 0}},
		},
		"a failed kubeconfig write below the threshold only changes its message": {
			vc:   makeVC("a").Cond(cpReady, isTrue, "Ready").Cond(kcReady, isTrue, "Ready").Obj(),
			err:  graced(&phaseError{reason: v1alpha1.ReasonKubeconfigWriteFailed, message: "timeout"}, 2, 3),
			want: []condition{{cpReady, "Ready", "", isTrue, 0}, {kcReady, v1alpha1.ReasonReady, "still Running, but 2 resync(s) in a row failed (it leaves Running after 3): timeout", isTrue, 1}},
		},
		"kubeconfig failure leaves the control plane ready": {
			vc:   makeVC("a").Cond(cpReady, isTrue, "Ready").Obj(),
			err:  failure(v1alpha1.ReasonKubeconfigWriteFailed, "forbidden"),
			want: []condition{{cpReady, "Ready", "", isTrue, 0}, {kcReady, v1alpha1.ReasonKubeconfigWriteFailed, "forbidden", isFalse, 1}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			setFailed(tc.vc, tc.err)
			if diff := cmp.Diff(tc.want, conditionsOf(tc.vc)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadyAndSyncingConditions(t *testing.T) {
	vc := makeVC("a").Cond(syncing, isTrue, "Serving").Obj()
	vc.Status.Endpoint, vc.Status.KubeconfigSecretName = "https://10.0.0.1:7000", "a-kubeconfig"
	setControlPlaneReady(vc)
	setKubeconfigReady(vc)
	setSyncingUnknown(vc) // the syncer's condition is left alone once set
	want := []condition{
		{syncing, "Serving", "", isTrue, 0},
		{cpReady, v1alpha1.ReasonReady, "the tenant apiserver at https://10.0.0.1:7000 is ready", isTrue, 1},
		{kcReady, v1alpha1.ReasonReady, `Secret a-kubeconfig holds the admin kubeconfig (key "kubeconfig")`, isTrue, 1},
	}
	if diff := cmp.Diff(want, conditionsOf(vc)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if got := computePhase(vc); got != v1alpha1.PhaseRunning {
		t.Errorf("phase = %s, want Running", got)
	}

	fresh := makeVC("b").Obj()
	setSyncingUnknown(fresh)
	if diff := cmp.Diff([]condition{{syncing, v1alpha1.ReasonSyncerNotServing, "no syncer has picked this virtual cluster up yet", metav1.ConditionUnknown, 1}},
		conditionsOf(fresh)); diff != "" {
		t.Errorf("initial Syncing condition (-want +got):\n%s", diff)
	}
}

func TestSetDeleting(t *testing.T) {
	vc := makeVC("a").Deleting().Cond(cpReady, isTrue, "Ready").Cond(kcReady, isTrue, "Ready").Obj()
	setDeleting(vc, "waiting for x")
	want := []condition{{cpReady, v1alpha1.ReasonDeleting, "waiting for x", isFalse, 1}, {kcReady, v1alpha1.ReasonDeleting, "waiting for x", isFalse, 1}}
	if diff := cmp.Diff(want, conditionsOf(vc)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if got := computePhase(vc); got != v1alpha1.PhaseTerminating {
		t.Errorf("phase = %s, want Terminating", got)
	}
}

func TestSetIdentity(t *testing.T) {
	vc := makeVC("demo").Obj()
	setIdentity(vc)
	key := v1alpha1.ClusterKey("default", "demo", "uid-demo")
	want := v1alpha1.VirtualClusterStatus{
		ClusterKey: key, EtcdPrefix: "/vnest/tenants/" + key, SuperNamespacePrefix: key + "-", KubeconfigSecretName: "demo-kubeconfig",
	}
	if diff := cmp.Diff(want, vc.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	// Set once: a later UID (say, a restore from backup) does not rename the tenant.
	vc.UID = "other"
	setIdentity(vc)
	if diff := cmp.Diff(want, vc.Status); diff != "" {
		t.Errorf("status changed on the second call (-want +got):\n%s", diff)
	}
}

func TestAsPhaseError(t *testing.T) {
	pe := failure(v1alpha1.ReasonPKIFailed, "bad")
	if got := asPhaseError(pe, v1alpha1.ReasonProvisionFailed); got != pe {
		t.Errorf("a phaseError must pass through unchanged, got %+v", got)
	}
	got := asPhaseError(errTest, v1alpha1.ReasonProvisionFailed)
	want := &phaseError{reason: v1alpha1.ReasonProvisionFailed, message: errTest.Error()}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(phaseError{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStartingRetry(t *testing.T) {
	now := time.Now()
	cases := map[string]struct {
		vc   *v1alpha1.VirtualCluster
		want time.Duration
	}{
		"no condition yet":    {makeVC("a").Obj(), retryStarting},
		"starting for a bit":  {makeVC("a").CondSince(cpReady, isFalse, "Provisioning", metav1.NewTime(now.Add(-10*time.Second))).Obj(), retryStarting},
		"starting for a long": {makeVC("a").CondSince(cpReady, isFalse, "Provisioning", metav1.NewTime(now.Add(-2*time.Minute))).Obj(), 10 * time.Second},
		"was ready":           {makeVC("a").CondSince(cpReady, isTrue, "Ready", metav1.NewTime(now.Add(-time.Hour))).Obj(), retryStarting},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := startingRetry(tc.vc, now); got != tc.want {
				t.Errorf("startingRetry = %s, want %s", got, tc.want)
			}
		})
	}
}

var errTest = errors.New("boom")

// TestRetrying: a transient failure of a tenant that has not run is
// Retrying (Provisioning) when its own reason would make the tenant Failed;
// one whose reason says already that it waits keeps it.
func TestRetrying(t *testing.T) {
	for reason, want := range map[string]v1alpha1.VirtualClusterPhase{
		v1alpha1.ReasonPKIFailed:             v1alpha1.PhaseProvisioning,
		v1alpha1.ReasonProvisionFailed:       v1alpha1.PhaseProvisioning,
		v1alpha1.ReasonCredentialsInvalid:    v1alpha1.PhaseProvisioning,
		v1alpha1.ReasonKubeconfigWriteFailed: v1alpha1.PhaseProvisioning,
		v1alpha1.ReasonStorageUnavailable:    v1alpha1.PhasePending,
		v1alpha1.ReasonControlPlaneUnhealthy: v1alpha1.PhaseProvisioning,
	} {
		vc := makeVC("a").Obj()
		if reason == v1alpha1.ReasonKubeconfigWriteFailed {
			setControlPlaneReady(vc)
		}
		pe := &phaseError{reason: reason, message: "timeout", transient: true}
		setFailed(vc, retrying(pe))
		if got := computePhase(vc); got != want {
			t.Errorf("%s: phase = %s, want %s (conditions %+v)", reason, got, want, conditionsOf(vc))
		}
		if pe.retrying {
			t.Errorf("%s: retrying changed the phaseError it was given", reason)
		}
	}
}
