package manager

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// The syncer's heartbeat Lease, read directly (not cached: the manager watches no Leases), in
// the namespace of --syncer-lease-namespace; the generated Role
// is for the default Lease.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get,namespace=vnest-system,resourceNames=vnest-syncer

// syncerLeaseGrace is how late past the end of its Lease the syncer may renew it (a slow super
// apiserver, the syncer's clock behind the manager's) before the manager takes it for stopped.
const syncerLeaseGrace = 10 * time.Second

// syncerLeaseMargin is how long after the syncer's Lease would expire (syncerLeaseExpiry) the
// manager looks at it again: a reconcile on the dot, or a timer that fires a little early, could
// find it not expired yet, and the next look would be a whole Lease duration later.
const syncerLeaseMargin = time.Second

// minSyncerLeaseRecheck is the soonest the manager looks at the syncer's Lease again, so that a
// Lease that has just expired, or a clock that jumps, costs no burst of reconciles.
const minSyncerLeaseRecheck = time.Second

// checkSyncerLease sets vc's Syncing condition Unknown when it is True and the syncer's Lease says
// the syncer stopped (setSyncerStopped): a syncer that stops leaves the condition as it was, and
// nothing else would change it. The Warning event follows the status write that carries it
// (patchStatus): recorded before, a write that conflicts would record it again at the next
// reconcile. The syncer sets the condition True again when it serves vc.
//
// It returns how soon to look again while the condition stays True: just after the Lease would
// expire unless renewed again (syncerLeaseRecheck), so that Unknown comes within about the
// Lease's duration and syncerLeaseGrace of the syncer's end, not at the next resync of a Running
// tenant; syncerLeaseGrace when the Lease could not be read; 0 when the condition is not True
// (or not True any more), so nothing needs looking at.
func (r *Reconciler) checkSyncerLease(ctx context.Context, vc *v1alpha1.VirtualCluster) time.Duration {
	if r.syncerLease.Name == "" || !meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing) {
		return 0
	}
	lease := &coordinationv1.Lease{}
	if err := r.APIReader.Get(ctx, r.syncerLease, lease); apierrors.IsNotFound(err) {
		lease = nil
	} else if err != nil {
		klog.FromContext(ctx).Info("Cannot read the syncer's lease; looking again soon", "lease", r.syncerLease, "in", syncerLeaseGrace, "err", err)
		return syncerLeaseGrace
	}
	now := r.now()
	if setSyncerStopped(vc, lease, r.syncerLease, now) != "" {
		return 0
	}
	return syncerLeaseRecheck(lease, now)
}

// syncerLeaseRecheck is how long after now to look again at the syncer's Lease, renewed in time
// by now: just after it would expire unless renewed again (syncerLeaseExpiry and
// syncerLeaseMargin), at least minSyncerLeaseRecheck, and at most resyncRunning (a Lease of a
// long duration waits for the resync it would have had anyway).
func syncerLeaseRecheck(lease *coordinationv1.Lease, now time.Time) time.Duration {
	if lease == nil || lease.Spec.RenewTime == nil {
		return minSyncerLeaseRecheck
	}
	return min(max(syncerLeaseExpiry(lease).Sub(now)+syncerLeaseMargin, minSyncerLeaseRecheck), resyncRunning)
}

// syncerLeaseExpiry is when the manager takes the syncer for stopped unless it renews lease
// again: its renewTime (not nil) plus its duration and syncerLeaseGrace.
func syncerLeaseExpiry(lease *coordinationv1.Lease) time.Time {
	duration := time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	return lease.Spec.RenewTime.Add(duration + syncerLeaseGrace)
}

// syncerStoppedEvent is the message of the Warning SyncerNotServing event a status write from
// before to after records: the Syncing condition went from True to Unknown with
// ReasonSyncerNotServing (setSyncerStopped; the manager's initial Unknown comes from no
// condition, not from True). "" when it did not.
func syncerStoppedEvent(before, after *v1alpha1.VirtualCluster) string {
	if !meta.IsStatusConditionTrue(before.Status.Conditions, v1alpha1.ConditionSyncing) {
		return ""
	}
	c := meta.FindStatusCondition(after.Status.Conditions, v1alpha1.ConditionSyncing)
	if c == nil || c.Status != metav1.ConditionUnknown || c.Reason != v1alpha1.ReasonSyncerNotServing {
		return ""
	}
	return c.Message
}

// setSyncerStopped sets vc's Syncing condition Unknown with ReasonSyncerNotServing when it is
// True and the syncer's Lease (lease, nil when it does not exist; ref, its namespace/name) was
// not renewed within its duration and syncerLeaseGrace by now. It returns the condition's new
// message, "" when it changed nothing.
func setSyncerStopped(vc *v1alpha1.VirtualCluster, lease *coordinationv1.Lease, ref types.NamespacedName, now time.Time) string {
	if !meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing) {
		return ""
	}
	msg := syncerStopped(lease, ref, now)
	if msg != "" {
		setCondition(vc, v1alpha1.ConditionSyncing, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, msg)
	}
	return msg
}

// syncerStopped says why the syncer's Lease shows it stopped by now, or "" when it was renewed
// in time.
func syncerStopped(lease *coordinationv1.Lease, ref types.NamespacedName, now time.Time) string {
	switch {
	case lease == nil:
		return fmt.Sprintf("the syncer's lease %s does not exist: the syncer may have stopped, or it cannot write its lease", ref)
	case lease.Spec.RenewTime == nil:
		return fmt.Sprintf("the syncer's lease %s has never been renewed: the syncer may have stopped", ref)
	}
	renewed := lease.Spec.RenewTime.Time
	if now.Before(syncerLeaseExpiry(lease)) {
		return ""
	}
	return fmt.Sprintf("the syncer's lease %s was last renewed at %s, %s ago: the syncer may have stopped",
		ref, renewed.UTC().Format(time.RFC3339), now.Sub(renewed).Round(time.Second))
}
