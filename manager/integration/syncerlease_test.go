package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/syncerlease"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// TestSyncingUnknownWhenSyncerStops: a Running tenant that a syncer serves (Syncing True), whose
// Lease (of 4 s) the syncer renewed just before it stopped, gets Syncing Unknown/SyncerNotServing
// with the Lease's last renewal, and a Warning event, once the Lease has expired (4 s and the
// manager's 10 s of grace) and the manager's watcher of the Lease has polled it (every 10 s), with
// nothing else to wake the manager: the syncer's status write does not, and the next resync of a
// Running tenant is two minutes on. The test plays the syncer: it writes the Lease and the
// condition.
func TestSyncingUnknownWhenSyncerStops(t *testing.T) {
	c := superClient(t)
	startManager(t, t.TempDir())
	vc := createAndWait(t, c, newVC("nosyncer"))
	t.Cleanup(func() {
		_ = tenantctl.Delete(context.WithoutCancel(t.Context()), c, tenantctl.DeleteOptions{Name: vc.Name, Namespace: vc.Namespace, Wait: true, Timeout: time.Minute}, &strings.Builder{})
	})

	renewed := time.Now().Truncate(time.Second)
	writeSyncerLease(t, c, renewed, 4)
	setSyncingTrue(t, c, vc)

	want := "the syncer's lease vnest-system/vnest-syncer was last renewed at " + renewed.UTC().Format(time.RFC3339) + ", "
	var got *metav1.Condition
	waitUntilMsg(t, 40*time.Second, func() string { return "Syncing Unknown/SyncerNotServing " + want + "…; got " + got.String() },
		func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(vc), vc); err != nil {
				return false, err
			}
			got = meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionSyncing)
			return got != nil && got.Status == metav1.ConditionUnknown && got.Reason == v1alpha1.ReasonSyncerNotServing && strings.HasPrefix(got.Message, want), nil
		})
	if vc.Status.Phase != v1alpha1.PhaseRunning {
		t.Errorf("phase %s, want Running: only the syncer's condition changes", vc.Status.Phase)
	}
	waitUntil(t, 30*time.Second, "a Warning SyncerNotServing event", func(ctx context.Context) (bool, error) {
		var evs eventsv1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(vc.Namespace)); err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == vc.Name && e.Type == corev1.EventTypeWarning && e.Reason == v1alpha1.ReasonSyncerNotServing && strings.HasPrefix(e.Note, want) {
				return true, nil
			}
		}
		return false, nil
	})
}

// writeSyncerLease writes the syncer's Lease of durationSeconds, as the syncer would have at
// renewed, in the namespace `vnest up` creates (created here for a `vnest up` older than that),
// and deletes it when the test ends.
func writeSyncerLease(t *testing.T, c client.Client, renewed time.Time, durationSeconds int32) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: syncerlease.DefaultNamespace}}
	if err := c.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: syncerlease.DefaultNamespace, Name: syncerlease.DefaultName},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("stopped-syncer_1"), LeaseDurationSeconds: ptr.To(durationSeconds),
			AcquireTime: &metav1.MicroTime{Time: renewed}, RenewTime: &metav1.MicroTime{Time: renewed},
		},
	}
	if err := c.Create(t.Context(), lease); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), lease) })
}

// setSyncingTrue records on vc what a syncer serving it records: Syncing True.
func setSyncingTrue(t *testing.T, c client.Client, vc *v1alpha1.VirtualCluster) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), vc); err != nil {
			return err
		}
		meta.SetStatusCondition(&vc.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionSyncing, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonReady, Message: "the syncer serves this virtual cluster", ObservedGeneration: vc.Generation})
		return c.Status().Update(t.Context(), vc)
	})
	if err != nil {
		t.Fatalf("setting Syncing True: %v", err)
	}
}
