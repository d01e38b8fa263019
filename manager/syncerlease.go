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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// The syncer's heartbeat Lease, read directly (not cached: the manager watches no Leases), in
// the namespace of --syncer-lease-namespace; the generated Role
// is for the default Lease.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get,namespace=vnest-system,resourceNames=vnest-syncer

// syncerLeaseGrace is how late past the end of its Lease the syncer may renew it (a slow super
// apiserver, the syncer's clock behind the manager's) before the manager takes it for stopped.
const syncerLeaseGrace = 10 * time.Second

// checkSyncerLease sets vc's Syncing condition Unknown when it is True and the syncer's Lease says
// the syncer stopped (setSyncerStopped): a syncer that stops leaves the condition as it was, and
// nothing else would change it. The Warning event follows the status write that carries it
// (patchStatus): recorded before, a write that conflicts would record it again at the next
// reconcile. The syncer sets the condition True again when it serves vc. A Lease that cannot be
// read changes nothing; the next reconcile looks again. What brings that reconcile soon after the
// Lease expires is the syncerLeaseWatcher, not this.
func (r *Reconciler) checkSyncerLease(ctx context.Context, vc *v1alpha1.VirtualCluster) {
	if r.syncerLease.Name == "" || !meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing) {
		return
	}
	lease, err := getSyncerLease(ctx, r.APIReader, r.syncerLease)
	if err != nil {
		klog.FromContext(ctx).Info("Cannot read the syncer's lease; looking again at the next reconcile", "lease", r.syncerLease, "err", err)
		return
	}
	setSyncerStopped(vc, lease, r.syncerLease, r.now())
}

// getSyncerLease reads the syncer's Lease ref with reader; nil, and no error, when it does not
// exist.
func getSyncerLease(ctx context.Context, reader client.Reader, ref types.NamespacedName) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{}
	err := reader.Get(ctx, ref, lease)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return lease, nil
}

// syncerLeasePoll is how often the syncerLeaseWatcher reads the syncer's Lease: as often as the
// syncer renews one of the default duration (a quarter of its 40 s).
const syncerLeasePoll = 10 * time.Second

// syncerLeaseWatcher reads the syncer's Lease every syncerLeasePoll, for the whole manager, and
// once it shows the syncer stopped queues the VirtualClusters whose Syncing is True
// (syncerLeaseWakeups) on wakeups, a source of the controller: their reconciles set Unknown
// (checkSyncerLease). Nothing else would bring them soon: the syncer's status writes wake no
// reconcile, and a Running tenant is resynced every 2 minutes; a requeue of each such tenant
// timed on the Lease would resync every Running tenant in full about every 50 s, where this
// costs one uncached GET per poll whatever the number of tenants. The VirtualClusters come from
// the manager's cache, which holds the syncer's status writes though they wake no reconcile.
type syncerLeaseWatcher struct {
	lease  types.NamespacedName
	reader client.Reader // the Lease, uncached: the manager watches no Leases
	cache  client.Reader // the VirtualClusters
	// logger is the manager's: a Runnable's context carries none.
	logger klog.Logger
	// clock is the time of the Lease check; nil: time.Now.
	clock   func() time.Time
	wakeups chan event.GenericEvent
}

func newSyncerLeaseWatcher(lease types.NamespacedName, reader, cache client.Reader, logger klog.Logger) *syncerLeaseWatcher {
	return &syncerLeaseWatcher{lease: lease, reader: reader, cache: cache, logger: logger, wakeups: make(chan event.GenericEvent)}
}

// Start implements manager.Runnable: it polls until ctx is done, the first time at once.
func (w *syncerLeaseWatcher) Start(ctx context.Context) error {
	ctx = klog.NewContext(ctx, w.logger)
	wait.UntilWithContext(ctx, w.poll, syncerLeasePoll)
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: it feeds the controller, which
// runs only where the manager leads.
func (w *syncerLeaseWatcher) NeedLeaderElection() bool { return true }

// poll reads the syncer's Lease and the VirtualClusters once and queues those
// syncerLeaseWakeups says. A Lease or a list it cannot read queues nothing; the next poll
// looks again.
func (w *syncerLeaseWatcher) poll(ctx context.Context) {
	logger := klog.FromContext(ctx)
	lease, err := getSyncerLease(ctx, w.reader, w.lease)
	if err != nil {
		logger.Info("Cannot read the syncer's lease; looking again at the next poll", "lease", w.lease, "in", syncerLeasePoll, "err", err)
		return
	}
	var list v1alpha1.VirtualClusterList
	if err := w.cache.List(ctx, &list); err != nil {
		logger.Info("Cannot list VirtualClusters; looking again at the next poll", "in", syncerLeasePoll, "err", err)
		return
	}
	now := time.Now()
	if w.clock != nil {
		now = w.clock()
	}
	why, keys := syncerLeaseWakeups(lease, w.lease, now, list.Items)
	if len(keys) == 0 {
		return
	}
	logger.Info("The syncer's lease expired; reconciling the VirtualClusters whose Syncing is True", "lease", w.lease, "why", why, "count", len(keys))
	for _, key := range keys {
		vc := &v1alpha1.VirtualCluster{}
		vc.Namespace, vc.Name = key.Namespace, key.Name
		select {
		case w.wakeups <- event.GenericEvent{Object: vc}:
		case <-ctx.Done():
			return
		}
	}
}

// syncerLeaseWakeups is what the syncerLeaseWatcher queues, given the syncer's Lease (nil when it
// does not exist; ref, its namespace/name) at now and the VirtualClusters vcs: nothing while the
// Lease is renewed in time; once it shows the syncer stopped (syncerStopped, the message why),
// every VirtualCluster whose Syncing is True and that is not being deleted, in vcs' order. Their
// reconciles make them Unknown, so the next poll queues them no more, and the syncer sets True
// again only once it renews its Lease. One being deleted is left out: its reconcile does not look
// at the Lease, so it would stay True and be queued, with a reconcile, at every poll.
func syncerLeaseWakeups(lease *coordinationv1.Lease, ref types.NamespacedName, now time.Time, vcs []v1alpha1.VirtualCluster) (why string, keys []types.NamespacedName) {
	why = syncerStopped(lease, ref, now)
	if why == "" {
		return "", nil
	}
	for i := range vcs {
		vc := &vcs[i]
		if vc.DeletionTimestamp.IsZero() && meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing) {
			keys = append(keys, client.ObjectKeyFromObject(vc))
		}
	}
	return why, keys
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
