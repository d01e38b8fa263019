package manager

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

var testLeaseRef = types.NamespacedName{Namespace: "vnest-system", Name: "vnest-syncer"}

// testNow is the manager's clock in the lease tests.
var testNow = time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)

// syncerLease is the syncer's Lease of testLeaseRef, renewed at renewed for 40 s.
func syncerLease(renewed time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: testLeaseRef.Namespace, Name: testLeaseRef.Name},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("syncer-0_1"), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &metav1.MicroTime{Time: renewed},
		},
	}
}

func TestSetSyncerStopped(t *testing.T) {
	stale := "the syncer's lease vnest-system/vnest-syncer was last renewed at 2026-12-08T09:59:09Z, 51s ago: the syncer may have stopped"
	never := syncerLease(testNow)
	never.Spec.RenewTime = nil
	for name, tc := range map[string]struct {
		vc    *v1alpha1.VirtualCluster
		lease *coordinationv1.Lease
		want  condition // the Syncing condition after
		// changed: setSyncerStopped returns want's message; else "".
		changed bool
	}{
		"fresh lease: unchanged": {
			vc: makeVC("a").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj(), lease: syncerLease(testNow.Add(-10 * time.Second)),
			want: condition{Type: syncing, Reason: v1alpha1.ReasonReady, Status: isTrue},
		},
		"past its duration, within the grace: unchanged": {
			vc: makeVC("a").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj(), lease: syncerLease(testNow.Add(-49 * time.Second)),
			want: condition{Type: syncing, Reason: v1alpha1.ReasonReady, Status: isTrue},
		},
		"stale lease: Unknown": {
			vc: makeVC("a").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj(), lease: syncerLease(testNow.Add(-51 * time.Second)),
			want: condition{syncing, v1alpha1.ReasonSyncerNotServing, stale, metav1.ConditionUnknown, 1}, changed: true,
		},
		"missing lease: Unknown": {
			vc: makeVC("a").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj(),
			want: condition{syncing, v1alpha1.ReasonSyncerNotServing,
				"the syncer's lease vnest-system/vnest-syncer does not exist: the syncer may have stopped, or it cannot write its lease", metav1.ConditionUnknown, 1},
			changed: true,
		},
		"lease never renewed: Unknown": {
			vc: makeVC("a").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj(), lease: never,
			want: condition{syncing, v1alpha1.ReasonSyncerNotServing,
				"the syncer's lease vnest-system/vnest-syncer has never been renewed: the syncer may have stopped", metav1.ConditionUnknown, 1},
			changed: true,
		},
		"Syncing False (the syncer stopped serving it): unchanged": {
			vc:   makeVC("a").Cond(syncing, isFalse, v1alpha1.ReasonSyncerNotServing).Obj(),
			want: condition{Type: syncing, Reason: v1alpha1.ReasonSyncerNotServing, Status: isFalse},
		},
		"Syncing Unknown (never served, or already marked): unchanged": {
			vc:   makeVC("a").Cond(syncing, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing).Obj(),
			want: condition{Type: syncing, Reason: v1alpha1.ReasonSyncerNotServing, Status: metav1.ConditionUnknown},
		},
	} {
		t.Run(name, func(t *testing.T) {
			msg := setSyncerStopped(tc.vc, tc.lease, testLeaseRef, testNow)
			var got condition
			for _, c := range conditionsOf(tc.vc) {
				if c.Type == syncing {
					got = c
				}
			}
			if got != tc.want {
				t.Errorf("Syncing = %+v, want %+v", got, tc.want)
			}
			if want := map[bool]string{true: tc.want.Message}[tc.changed]; msg != want {
				t.Errorf("setSyncerStopped = %q, want %q", msg, want)
			}
		})
	}
}

// TestReconcileSyncerLease: a reconcile of a VirtualCluster whose Syncing is True leaves it True
// while the syncer's Lease is renewed, and looks again just after the Lease would expire, sooner
// than the phases would (here they fail: no storage, retried after retryFailure); and makes it
// Unknown, with a Warning event, once the Lease has expired, whatever the phases do.
func TestReconcileSyncerLease(t *testing.T) {
	vc := makeVC("demo").Finalizer().Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj()
	lease := syncerLease(testNow.Add(-45 * time.Second))
	r, c, rec := newTestReconciler(t, nil, vc, lease)
	now := testNow
	r.syncerLease, r.clock = testLeaseRef, func() time.Time { return now }
	syncingOf := func() *metav1.Condition {
		t.Helper()
		got := &v1alpha1.VirtualCluster{}
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), got); err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(got.Status.Conditions, syncing)
	}

	if res := reconcileOnce(t, r, vc); res.RequeueAfter != 6*time.Second {
		t.Errorf("lease renewed 45s ago: RequeueAfter = %v, want 6s (when it would expire, and a second)", res.RequeueAfter)
	}
	if got := syncingOf(); got.Status != isTrue {
		t.Errorf("lease renewed 45s ago: Syncing = %+v, want True", got)
	}
	drainEvents(rec)

	now = testNow.Add(6 * time.Second)
	reconcileOnce(t, r, vc)
	want := "the syncer's lease vnest-system/vnest-syncer was last renewed at 2026-12-08T09:59:15Z, 51s ago: the syncer may have stopped"
	if got := syncingOf(); got.Status != metav1.ConditionUnknown || got.Reason != v1alpha1.ReasonSyncerNotServing || got.Message != want {
		t.Errorf("lease renewed 51s ago: Syncing = %+v, want Unknown/SyncerNotServing %q", got, want)
	}
	evs := drainEvents(rec)
	if !containsPrefix(evs, "Warning SyncerNotServing "+want) {
		t.Errorf("events = %q, want a Warning SyncerNotServing with the message", evs)
	}
}

// containsPrefix reports whether one of events starts with prefix.
func containsPrefix(events []string, prefix string) bool {
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// TestReconcileSyncerNotServingEventOnce: the Warning SyncerNotServing event is recorded once the
// status write that carries Syncing Unknown went through: a write that conflicts records none,
// and the reconcile after it, which writes the condition, records one.
func TestReconcileSyncerNotServingEventOnce(t *testing.T) {
	vc := makeVC("demo").Finalizer().Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj()
	conflicts := 1
	funcs := &interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
		if conflicts > 0 {
			conflicts--
			return apierrors.NewConflict(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "virtualclusters"}, obj.GetName(), nil)
		}
		return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
	}}
	r, _, rec := newTestReconciler(t, funcs, vc, syncerLease(testNow.Add(-2*time.Minute)))
	r.syncerLease, r.clock = testLeaseRef, func() time.Time { return testNow }

	reconcileOnce(t, r, vc)
	if evs := drainEvents(rec); containsPrefix(evs, "Warning SyncerNotServing ") {
		t.Errorf("status write conflicted: events = %q, want no SyncerNotServing", evs)
	}
	reconcileOnce(t, r, vc)
	reconcileOnce(t, r, vc)
	var got []string
	for _, e := range drainEvents(rec) {
		if strings.HasPrefix(e, "Warning SyncerNotServing ") {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Errorf("SyncerNotServing events after the write went through = %q, want one", got)
	}
}

func TestSyncerLeaseRecheck(t *testing.T) {
	long := syncerLease(testNow)
	long.Spec.LeaseDurationSeconds = ptr.To[int32](600)
	for name, tc := range map[string]struct {
		lease *coordinationv1.Lease
		want  time.Duration
	}{
		"just renewed: its duration, the grace and the margin": {lease: syncerLease(testNow), want: 51 * time.Second},
		"renewed 45s ago":                      {lease: syncerLease(testNow.Add(-45 * time.Second)), want: 6 * time.Second},
		"past its duration, within the grace":  {lease: syncerLease(testNow.Add(-49*time.Second - 500*time.Millisecond)), want: 1500 * time.Millisecond},
		"expiring now: at least a second":      {lease: syncerLease(testNow.Add(-50*time.Second - 500*time.Millisecond)), want: time.Second},
		"renewed ahead of the manager's clock": {lease: syncerLease(testNow.Add(5 * time.Second)), want: 56 * time.Second},
		"a long duration: the normal resync":   {lease: long, want: resyncRunning},
	} {
		t.Run(name, func(t *testing.T) {
			if got := syncerLeaseRecheck(tc.lease, testNow); got != tc.want {
				t.Errorf("syncerLeaseRecheck = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRequeueBy(t *testing.T) {
	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		res  ctrl.Result
		err  error
		d    time.Duration
		want ctrl.Result
	}{
		"sooner: brought forward":     {res: ctrl.Result{RequeueAfter: resyncRunning}, d: 6 * time.Second, want: ctrl.Result{RequeueAfter: 6 * time.Second}},
		"later: unchanged":            {res: ctrl.Result{RequeueAfter: retryStarting}, d: 6 * time.Second, want: ctrl.Result{RequeueAfter: retryStarting}},
		"no requeue: after d":         {d: 6 * time.Second, want: ctrl.Result{RequeueAfter: 6 * time.Second}},
		"d 0: unchanged":              {res: ctrl.Result{RequeueAfter: resyncRunning}, want: ctrl.Result{RequeueAfter: resyncRunning}},
		"with an error: the back-off": {err: boom, d: 6 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			if got := requeueBy(tc.res, tc.err, tc.d); got != tc.want {
				t.Errorf("requeueBy = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSyncerStoppedEvent(t *testing.T) {
	const msg = "the syncer's lease vnest-system/vnest-syncer was last renewed at 2026-12-08T09:59:09Z, 51s ago: the syncer may have stopped"
	withSyncing := func(status metav1.ConditionStatus, reason, message string) *v1alpha1.VirtualCluster {
		vc := makeVC("a").Running().Obj()
		if status != "" {
			meta.SetStatusCondition(&vc.Status.Conditions, metav1.Condition{Type: syncing, Status: status, Reason: reason, Message: message})
		}
		return vc
	}
	trueVC := withSyncing(isTrue, v1alpha1.ReasonReady, "the syncer serves this virtual cluster")
	for name, tc := range map[string]struct {
		before, after *v1alpha1.VirtualCluster
		want          string
	}{
		"True to Unknown/SyncerNotServing: its message": {before: trueVC, after: withSyncing(metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, msg), want: msg},
		"still True": {before: trueVC, after: trueVC},
		"no condition to the manager's initial Unknown": {before: withSyncing("", "", ""),
			after: withSyncing(metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, "no syncer has picked this virtual cluster up yet")},
		"Unknown already": {before: withSyncing(metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, msg),
			after: withSyncing(metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, msg)},
		"True to False (the syncer's own)": {before: trueVC, after: withSyncing(isFalse, v1alpha1.ReasonSyncerNotServing, "the syncer stopped serving this virtual cluster: it is being deleted")},
	} {
		t.Run(name, func(t *testing.T) {
			if got := syncerStoppedEvent(tc.before, tc.after); got != tc.want {
				t.Errorf("syncerStoppedEvent = %q, want %q", got, tc.want)
			}
		})
	}
}
