package manager

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
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
// nothing else would change it. A fresh reading of the Lease (syncerLeaseReading, the
// syncerLeaseWatcher's every poll) that shows it renewed in time for now settles it with no GET:
// the syncer is serving, as no later renewal can end sooner. Any other reading (stopped, none, or
// older than syncerLeaseFresh) is not taken on trust: the Lease is read again, kept for the
// reconciles after, and judged now, so a syncer that came back since a reading that showed it
// stopped (its first renewal, then Syncing True) is not made Unknown again. The Warning event
// follows the status write that carries it (patchStatus): recorded before, a write that conflicts
// would record it again at the next reconcile. The syncer sets the condition True again when it
// serves vc. A Lease that cannot be read changes nothing; the next reconcile looks again. What
// brings that reconcile soon after the Lease expires is the syncerLeaseWatcher, not this.
func (r *Reconciler) checkSyncerLease(ctx context.Context, vc *v1alpha1.VirtualCluster) {
	if r.syncerLease.Name == "" || !meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing) {
		return
	}
	now := r.now()
	if last := r.leaseReading.fresh(now); last != nil && syncerStopped(last.lease, r.syncerLease, now) == "" {
		return
	}
	lease, err := getSyncerLease(ctx, r.APIReader, r.syncerLease)
	if err != nil {
		klog.FromContext(ctx).Info("Cannot read the syncer's lease; looking again at the next reconcile", "lease", r.syncerLease, "err", err)
		return
	}
	r.leaseReading.store(lease, now)
	setSyncerStopped(vc, lease, r.syncerLease, now)
}

// syncerLeaseFresh is the age up to which checkSyncerLease takes a reading of the syncer's Lease
// that shows it renewed in time: two polls of the syncerLeaseWatcher, whose readings come a little
// more than syncerLeasePoll apart (its period starts when a poll ends). Such a reading stays true
// until the renewal it shows runs out, whatever its age; the bound is for a Lease deleted since
// (a syncer uninstalled), which a reconcile then sees within 20 s.
const syncerLeaseFresh = 2 * syncerLeasePoll

// syncerLeaseReading is the last reading of the syncer's Lease, made by the syncerLeaseWatcher at
// each poll or by a reconcile, for the reconciles' checkSyncerLease: a GET in each of them would
// cost N GETs every resync period with N tenants, for a Lease the watcher read at most
// syncerLeasePoll before. Its zero value holds none; it is safe for concurrent use.
type syncerLeaseReading struct {
	last atomic.Pointer[leaseReading]
}

// leaseReading is one reading of the syncer's Lease: lease, nil when it did not exist, read at at.
// It is shared: nothing may modify lease.
type leaseReading struct {
	lease *coordinationv1.Lease
	at    time.Time
}

// store keeps lease (nil: it did not exist), read at at, as the last reading.
func (h *syncerLeaseReading) store(lease *coordinationv1.Lease, at time.Time) {
	h.last.Store(&leaseReading{lease: lease, at: at})
}

// fresh is the last reading if it was made within syncerLeaseFresh before now, else nil. One
// that says it was made after now (a clock set back) is not taken.
func (h *syncerLeaseReading) fresh(now time.Time) *leaseReading {
	last := h.last.Load()
	if last == nil || now.Before(last.at) || now.Sub(last.at) > syncerLeaseFresh {
		return nil
	}
	return last
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
// (checkSyncerLease), from the reading it keeps for them (reading). Nothing else would bring them
// soon: the syncer's status writes wake no reconcile, and a Running tenant is resynced every 2
// minutes; a requeue of each such tenant timed on the Lease would resync every Running tenant in
// full about every 50 s, where this costs one uncached GET per poll whatever the number of
// tenants. The VirtualClusters come from the manager's cache, which holds the syncer's status
// writes though they wake no reconcile.
type syncerLeaseWatcher struct {
	lease types.NamespacedName
	// reading is where each poll keeps what it read, for the Reconciler's checkSyncerLease.
	reading *syncerLeaseReading
	reader  client.Reader // the Lease, uncached: the manager watches no Leases
	cache   client.Reader // the VirtualClusters
	// logger is the manager's: a Runnable's context carries none.
	logger klog.Logger
	// clock is the time of the Lease check; nil: time.Now.
	clock   func() time.Time
	wakeups chan event.GenericEvent
}

func newSyncerLeaseWatcher(lease types.NamespacedName, reading *syncerLeaseReading, reader, cache client.Reader, logger klog.Logger) *syncerLeaseWatcher {
	return &syncerLeaseWatcher{lease: lease, reading: reading, reader: reader, cache: cache, logger: logger, wakeups: make(chan event.GenericEvent)}
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

// poll lists the VirtualClusters and reads the syncer's Lease once, keeps the reading (reading)
// and queues those syncerLeaseWakeups says. With no VirtualCluster whose Syncing is True and that
// is not being deleted (servedBySyncer) it reads no Lease: it would queue none, and the reconcile
// of one that has since become True finds no fresh reading and reads the Lease itself. A list or
// a Lease it cannot read queues nothing; the next poll looks again.
func (w *syncerLeaseWatcher) poll(ctx context.Context) {
	logger := klog.FromContext(ctx)
	var list v1alpha1.VirtualClusterList
	if err := w.cache.List(ctx, &list); err != nil {
		logger.Info("Cannot list VirtualClusters; looking again at the next poll", "in", syncerLeasePoll, "err", err)
		return
	}
	if !slices.ContainsFunc(list.Items, func(vc v1alpha1.VirtualCluster) bool { return servedBySyncer(&vc) }) {
		return
	}
	at := time.Now() // the reading's time: before the GET, so the Lease is at least as fresh
	if w.clock != nil {
		at = w.clock()
	}
	lease, err := getSyncerLease(ctx, w.reader, w.lease)
	if err != nil {
		logger.Info("Cannot read the syncer's lease; looking again at the next poll", "lease", w.lease, "in", syncerLeasePoll, "err", err)
		return
	}
	w.reading.store(lease, at)
	why, keys := syncerLeaseWakeups(lease, w.lease, at, list.Items)
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
		if servedBySyncer(&vcs[i]) {
			keys = append(keys, client.ObjectKeyFromObject(&vcs[i]))
		}
	}
	return why, keys
}

// servedBySyncer reports whether vc's Syncing is True and vc is not being deleted: whether an
// expired Lease of the syncer is to make it Unknown (syncerLeaseWakeups).
func servedBySyncer(vc *v1alpha1.VirtualCluster) bool {
	return vc.DeletionTimestamp.IsZero() && meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing)
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
