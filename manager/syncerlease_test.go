package manager

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

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
// while the syncer's Lease is renewed, and makes it Unknown, with a Warning event, once the Lease
// has expired, whatever the phases do (here they fail: no storage).
func TestReconcileSyncerLease(t *testing.T) {
	vc := makeVC("demo").Finalizer().Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj()
	lease := syncerLease(testNow.Add(-5 * time.Second))
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

	reconcileOnce(t, r, vc)
	if got := syncingOf(); got.Status != isTrue {
		t.Errorf("lease renewed 5s ago: Syncing = %+v, want True", got)
	}
	drainEvents(rec)

	now = testNow.Add(2 * time.Minute)
	reconcileOnce(t, r, vc)
	want := "the syncer's lease vnest-system/vnest-syncer was last renewed at 2026-12-08T09:59:55Z, 2m5s ago: the syncer may have stopped"
	if got := syncingOf(); got.Status != metav1.ConditionUnknown || got.Reason != v1alpha1.ReasonSyncerNotServing || got.Message != want {
		t.Errorf("lease renewed 2m5s ago: Syncing = %+v, want Unknown/SyncerNotServing %q", got, want)
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

// countLeaseGets returns interceptor functions that count the GETs of Leases in gets and fail
// them with a timeout while *fail is true (fail may be nil).
func countLeaseGets(gets *atomic.Int32, fail *bool) *interceptor.Funcs {
	return &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*coordinationv1.Lease); ok {
			gets.Add(1)
			if fail != nil && *fail {
				return apierrors.NewTimeoutError("the super apiserver is slow", 1)
			}
		}
		return c.Get(ctx, key, obj, opts...)
	}}
}

// describeReading is what reading says, for the tests' messages: "none", "no Lease, read at T" or
// "renewed at R, read at T".
func describeReading(reading *leaseReading) string {
	switch {
	case reading == nil:
		return "none"
	case reading.lease == nil:
		return "no Lease, read at " + reading.at.Format(time.TimeOnly)
	}
	return "renewed at " + reading.lease.Spec.RenewTime.Format(time.TimeOnly) + ", read at " + reading.at.Format(time.TimeOnly)
}

// TestCheckSyncerLeaseReading: two reconciles' checkSyncerLease (a burst) take the last reading
// (the watcher's) with no GET when it was made within syncerLeaseFresh and shows the Lease renewed
// in time for now. Any other reading (stopped, none, older, from after now) they do not trust: the
// first reads the Lease and keeps that for the second, and one that shows the syncer stopped is
// read again by each, so a syncer that came back since is not made Unknown. A Lease that cannot
// be read changes nothing and keeps nothing.
func TestCheckSyncerLeaseReading(t *testing.T) {
	renewed := syncerLease(testNow.Add(-5 * time.Second))
	earlier := syncerLease(testNow.Add(-30 * time.Second)) // as read before
	expired := syncerLease(testNow.Add(-2 * time.Minute))
	for name, tc := range map[string]struct {
		reading *leaseReading         // the last reading before; nil: none
		lease   *coordinationv1.Lease // the Lease a GET reads; nil: none
		fail    bool                  // the GETs fail
		want    metav1.ConditionStatus
		// wantGets is how many GETs of the Lease the two checks make.
		wantGets    int32
		wantReading *leaseReading // the last reading after
	}{
		"fresh reading, renewed: True, no GET": {
			reading: &leaseReading{earlier, testNow.Add(-15 * time.Second)}, lease: expired, want: isTrue,
			wantReading: &leaseReading{earlier, testNow.Add(-15 * time.Second)},
		},
		"fresh reading, expired, renewed since: True, one GET, kept": {
			reading: &leaseReading{expired, testNow.Add(-5 * time.Second)}, lease: renewed, want: isTrue,
			wantGets: 1, wantReading: &leaseReading{renewed, testNow},
		},
		"fresh reading, no Lease, renewed since: True, one GET, kept": {
			reading: &leaseReading{nil, testNow.Add(-5 * time.Second)}, lease: renewed, want: isTrue,
			wantGets: 1, wantReading: &leaseReading{renewed, testNow},
		},
		"fresh reading, expired, still expired: Unknown, a GET each": {
			reading: &leaseReading{expired, testNow.Add(-5 * time.Second)}, lease: expired, want: metav1.ConditionUnknown,
			wantGets: 2, wantReading: &leaseReading{expired, testNow},
		},
		"fresh reading, renewed in time when read, not for now: one GET": {
			reading: &leaseReading{syncerLease(testNow.Add(-55 * time.Second)), testNow.Add(-10 * time.Second)}, lease: renewed, want: isTrue,
			wantGets: 1, wantReading: &leaseReading{renewed, testNow},
		},
		"stale reading: one GET, kept": {
			reading: &leaseReading{earlier, testNow.Add(-syncerLeaseFresh - time.Second)}, lease: renewed, want: isTrue,
			wantGets: 1, wantReading: &leaseReading{renewed, testNow},
		},
		"no reading: one GET, kept": {
			lease: renewed, want: isTrue, wantGets: 1, wantReading: &leaseReading{renewed, testNow},
		},
		"no reading, no Lease: Unknown, a GET each": {
			want: metav1.ConditionUnknown, wantGets: 2, wantReading: &leaseReading{nil, testNow},
		},
		"reading from after now (a clock set back): one GET, kept": {
			reading: &leaseReading{renewed, testNow.Add(time.Second)}, lease: renewed, want: isTrue,
			wantGets: 1, wantReading: &leaseReading{renewed, testNow},
		},
		"no reading, GET fails: unchanged, none kept": {
			lease: expired, fail: true, want: isTrue, wantGets: 2,
		},
	} {
		t.Run(name, func(t *testing.T) {
			var objs []client.Object
			if tc.lease != nil {
				objs = append(objs, tc.lease.DeepCopy())
			}
			var gets atomic.Int32
			r, _, _ := newTestReconciler(t, countLeaseGets(&gets, &tc.fail), objs...)
			r.syncerLease, r.clock = testLeaseRef, func() time.Time { return testNow }
			if tc.reading != nil {
				r.leaseReading.store(tc.reading.lease, tc.reading.at)
			}
			for _, name := range []string{"a", "b"} {
				vc := makeVC(name).Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj()
				r.checkSyncerLease(testContext(t), vc)
				if got := meta.FindStatusCondition(vc.Status.Conditions, syncing); got.Status != tc.want {
					t.Errorf("%s: Syncing %s/%s %q, want %s", name, got.Status, got.Reason, got.Message, tc.want)
				}
			}
			if got := gets.Load(); got != tc.wantGets {
				t.Errorf("GETs of the Lease = %d, want %d", got, tc.wantGets)
			}
			if got, want := describeReading(r.leaseReading.last.Load()), describeReading(tc.wantReading); got != want {
				t.Errorf("last reading %s, want %s", got, want)
			}
		})
	}
}

func TestSyncerLeaseWakeups(t *testing.T) {
	trueVC := func(name string) *vcWrapper {
		return makeVC(name).Running().Cond(syncing, isTrue, v1alpha1.ReasonReady)
	}
	vcs := []v1alpha1.VirtualCluster{
		*trueVC("served").Obj(),
		*makeVC("unknown").Running().Cond(syncing, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing).Obj(),
		*makeVC("false").Cond(syncing, isFalse, v1alpha1.ReasonSyncerNotServing).Obj(),
		*makeVC("new").Obj(),
		*trueVC("deleting").Finalizer().Deleting().Obj(),
		*trueVC("other").Obj(),
	}
	served := []types.NamespacedName{{Namespace: "default", Name: "served"}, {Namespace: "default", Name: "other"}}
	never := syncerLease(testNow)
	never.Spec.RenewTime = nil
	for name, tc := range map[string]struct {
		lease *coordinationv1.Lease
		vcs   []v1alpha1.VirtualCluster
		want  []types.NamespacedName
	}{
		"renewed just now: none":                        {lease: syncerLease(testNow), vcs: vcs},
		"past its duration, within the grace: none":     {lease: syncerLease(testNow.Add(-49 * time.Second)), vcs: vcs},
		"expired: those whose Syncing is True":          {lease: syncerLease(testNow.Add(-51 * time.Second)), vcs: vcs, want: served},
		"missing: those whose Syncing is True":          {vcs: vcs, want: served},
		"never renewed: those whose Syncing is True":    {lease: never, vcs: vcs, want: served},
		"expired, none True (all marked already): none": {lease: syncerLease(testNow.Add(-2 * time.Minute)), vcs: vcs[1:5]},
		"expired, no VirtualClusters: none":             {lease: syncerLease(testNow.Add(-2 * time.Minute))},
	} {
		t.Run(name, func(t *testing.T) {
			why, got := syncerLeaseWakeups(tc.lease, testLeaseRef, testNow, tc.vcs)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("syncerLeaseWakeups keys (-want +got):\n%s", diff)
			}
			if wantWhy := syncerStopped(tc.lease, testLeaseRef, testNow); len(got) > 0 && why != wantWhy {
				t.Errorf("syncerLeaseWakeups why = %q, want %q", why, wantWhy)
			}
		})
	}
}

// TestSyncerLeaseWatcherPoll: a poll with the syncer's Lease expired sends the controller the
// VirtualClusters whose Syncing is True, and one with the Lease renewed in time sends none.
func TestSyncerLeaseWatcherPoll(t *testing.T) {
	lease := syncerLease(testNow.Add(-5 * time.Second))
	_, c, _ := newTestReconciler(t, nil,
		makeVC("served").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj(),
		makeVC("unknown").Running().Cond(syncing, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing).Obj(),
		lease)
	now := testNow
	w := newSyncerLeaseWatcher(testLeaseRef, &syncerLeaseReading{}, c, c, testr.New(t))
	w.clock, w.wakeups = func() time.Time { return now }, make(chan event.GenericEvent, 10)
	sent := func() []string {
		var got []string
		for {
			select {
			case e := <-w.wakeups:
				got = append(got, client.ObjectKeyFromObject(e.Object).String())
			default:
				return got
			}
		}
	}

	w.poll(testContext(t))
	if got := sent(); len(got) != 0 {
		t.Errorf("lease renewed 5s ago: sent %q, want nothing", got)
	}
	now = testNow.Add(46 * time.Second)
	w.poll(testContext(t))
	if diff := cmp.Diff([]string{"default/served"}, sent()); diff != "" {
		t.Errorf("lease renewed 51s ago: sent (-want +got):\n%s", diff)
	}
	if err := c.Delete(t.Context(), lease); err != nil {
		t.Fatal(err)
	}
	now = testNow
	w.poll(testContext(t))
	if diff := cmp.Diff([]string{"default/served"}, sent()); diff != "" {
		t.Errorf("lease deleted: sent (-want +got):\n%s", diff)
	}
}

// TestSyncerLeaseWatcherStart: the watcher polls at once when started, hands the controller's
// source what it queues, and returns when its context is done.
func TestSyncerLeaseWatcherStart(t *testing.T) {
	_, c, _ := newTestReconciler(t, nil, makeVC("served").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj())
	w := newSyncerLeaseWatcher(testLeaseRef, &syncerLeaseReading{}, c, c, testr.New(t)) // no Lease: the syncer never ran, or stopped
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()

	select {
	case e := <-w.wakeups:
		if got := client.ObjectKeyFromObject(e.Object).String(); got != "default/served" {
			t.Errorf("sent %s, want default/served", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sent 5s after the start, want default/served at once")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start still running 5s after its context was cancelled")
	}
}

// TestSyncerLeaseWatcherReading: a poll keeps what it read for the reconciles, whose check then
// reads no Lease while that reading is fresh, and does once it is not. With no VirtualCluster
// whose Syncing is True and that is not being deleted in the cache, a poll reads no Lease, and
// the check of one that has since become True reads it itself.
func TestSyncerLeaseWatcherReading(t *testing.T) {
	lease := syncerLease(testNow.Add(-5 * time.Second))
	var gets atomic.Int32
	r, c, _ := newTestReconciler(t, countLeaseGets(&gets, nil),
		makeVC("unknown").Running().Cond(syncing, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing).Obj(),
		makeVC("deleting").Finalizer().Deleting().Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj(),
		lease)
	now := testNow
	r.syncerLease, r.clock = testLeaseRef, func() time.Time { return now }
	w := newSyncerLeaseWatcher(testLeaseRef, &r.leaseReading, c, c, testr.New(t))
	w.clock, w.wakeups = r.clock, make(chan event.GenericEvent, 10)
	served := makeVC("served").Running().Cond(syncing, isTrue, v1alpha1.ReasonReady).Obj()
	check := func(when string, wantGets int32) {
		t.Helper()
		vc := served.DeepCopy()
		r.checkSyncerLease(testContext(t), vc)
		if got := meta.FindStatusCondition(vc.Status.Conditions, syncing); got.Status != isTrue {
			t.Errorf("%s: Syncing %s/%s %q, want True", when, got.Status, got.Reason, got.Message)
		}
		if got := gets.Load(); got != wantGets {
			t.Errorf("%s: %d GETs of the Lease in all, want %d", when, got, wantGets)
		}
	}

	w.poll(testContext(t))
	if got := gets.Load(); got != 0 {
		t.Errorf("none True in the cache: the poll made %d GETs of the Lease, want none", got)
	}
	check("the check of one become True since the poll", 1)

	if err := c.Create(t.Context(), served); err != nil {
		t.Fatal(err)
	}
	now = testNow.Add(syncerLeaseFresh + time.Second)
	w.poll(testContext(t))
	if got, want := describeReading(r.leaseReading.last.Load()), describeReading(&leaseReading{lease, now}); got != want {
		t.Errorf("after a poll: last reading %s, want %s", got, want)
	}
	now = now.Add(syncerLeaseFresh)
	check("the check within syncerLeaseFresh of the poll", 2)
	now = now.Add(time.Second)
	check("the check past syncerLeaseFresh after the poll", 3)
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
