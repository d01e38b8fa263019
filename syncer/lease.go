package syncer

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// heartbeat is the syncer's Lease in the super cluster, renewed every quarter of its duration
// while the syncer runs. A Syncing condition the syncer set True stays True when the syncer
// stops (a crash, an OOM kill, its Deployment scaled to 0), as nothing is left to change it: the
// manager reads this Lease and sets the condition Unknown once it has not been renewed for its
// duration (manager/syncerlease.go), as the node lifecycle controller does for a kubelet.
//
// It is a heartbeat, not leader election: whichever syncer runs writes it, so one killed and
// started again serves at once, and holderIdentity only says which process renewed it last. A
// renewal that fails is logged and tried again a period later; it never stops the syncer. While
// the Lease has not been renewed within its duration (renewedWithin), the syncer sets no Syncing
// condition True (tenant.go): a syncer that cannot write its Lease (its Role missing, the
// namespace missing) would set it True again as soon as the manager set it Unknown, and the
// condition would flap, with an event each time.
type heartbeat struct {
	leases          coordinationv1client.LeasesGetter
	namespace, name string
	// holder is this process: holderIdentity.
	holder   string
	duration time.Duration
	now      func() time.Time
	// renewed is the renewTime (Unix ns) of this process's last renewal that went through; 0
	// until one did.
	renewed atomic.Int64
	// renewedAgain, when set, runs after a renewal that went through while the Lease had not
	// been renewed within its duration (the first renewal too): the syncer looks again at the
	// VirtualClusters whose Syncing it held back.
	renewedAgain func(context.Context)
}

// newHeartbeat is the heartbeat of this process in the Lease the options name.
func newHeartbeat(leases coordinationv1client.LeasesGetter, o *Options, now func() time.Time) *heartbeat {
	return &heartbeat{leases: leases, namespace: o.LeaseNamespace, name: o.LeaseName, holder: holderIdentity(), duration: o.LeaseDuration, now: now}
}

// holderIdentity names this process: its host name (a pod's name) and its pid.
func holderIdentity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}

// period is how often the Lease is renewed.
func (h *heartbeat) period() time.Duration { return h.duration / 4 }

// run renews the Lease at once and then every period until ctx ends. A renewal takes at most a
// period, so one that hangs does not hold up the next.
func (h *heartbeat) run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithValues("lease", klog.KRef(h.namespace, h.name))
	logger.Info("Renewing the syncer's lease", "holder", h.holder, "every", h.period())
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, h.period())
		defer cancel()
		last, lapsed := h.lastRenewed(), !h.renewedWithin(h.now())
		if err := h.renew(ctx); err != nil {
			if ctx.Err() == nil {
				logger.Error(err, "Cannot renew the syncer's lease; retrying", "in", h.period(), "lastRenewed", logRenewed(last))
			}
			return
		}
		if !lapsed || h.renewedAgain == nil {
			return
		}
		if !last.IsZero() {
			logger.Info("Renewed the syncer's lease again; setting Syncing True where it was held back", "lastRenewed", logRenewed(last))
		}
		h.renewedAgain(ctx)
	}, h.period())
}

// lastRenewed is the renewTime of this process's last renewal that went through; zero until one
// did.
func (h *heartbeat) lastRenewed() time.Time {
	if ns := h.renewed.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// logRenewed is a renewTime for the log: "never" for zero.
func logRenewed(t time.Time) any {
	if t.IsZero() {
		return "never"
	}
	return t
}

// renewedWithin reports whether this process renewed the Lease within its duration by now: else
// the manager takes the syncer for stopped (or will, after its grace), and a Syncing condition
// set True would be set Unknown again.
func (h *heartbeat) renewedWithin(now time.Time) bool {
	last := h.lastRenewed()
	return !last.IsZero() && now.Sub(last) < h.duration
}

// renew creates the Lease, or updates it, with this process as its holder and now as its
// renewTime, and records that renewTime once written.
func (h *heartbeat) renew(ctx context.Context) error {
	leases := h.leases.Leases(h.namespace)
	lease, err := leases.Get(ctx, h.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: h.namespace, Name: h.name}}
		h.stamp(lease)
		if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Lease %s/%s: %w", h.namespace, h.name, err)
		}
		h.renewed.Store(lease.Spec.RenewTime.UnixNano())
		return nil
	case err != nil:
		return fmt.Errorf("reading Lease %s/%s: %w", h.namespace, h.name, err)
	}
	h.stamp(lease)
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating Lease %s/%s: %w", h.namespace, h.name, err)
	}
	h.renewed.Store(lease.Spec.RenewTime.UnixNano())
	return nil
}

// stamp makes lease say that this process renewed it now; acquireTime is when this process
// first did.
func (h *heartbeat) stamp(lease *coordinationv1.Lease) {
	now := metav1.NewMicroTime(h.now())
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != h.holder || lease.Spec.AcquireTime == nil {
		lease.Spec.AcquireTime = &now
	}
	lease.Spec.HolderIdentity = ptr.To(h.holder)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(h.duration / time.Second))
	lease.Spec.RenewTime = &now
}
