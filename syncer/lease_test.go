package syncer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// testHeartbeat is a heartbeat of the process "syncer-0_1" in cs, renewed at *now.
func testHeartbeat(cs *fake.Clientset, now *time.Time) *heartbeat {
	return &heartbeat{leases: cs.CoordinationV1(), namespace: "vnest-system", name: "vnest-syncer", holder: "syncer-0_1",
		duration: 40 * time.Second, now: func() time.Time { return *now }}
}

// TestHeartbeatRenew: the first renewal creates the Lease (holder, duration, renew and acquire
// times), the next ones move its renewTime on, and one after another process held it takes it
// over.
func TestHeartbeatRenew(t *testing.T) {
	cs := fake.NewClientset()
	t0 := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	now := t0
	h := testHeartbeat(cs, &now)
	leaseAfterRenew := func(what string) coordinationv1.LeaseSpec {
		t.Helper()
		if err := h.renew(t.Context()); err != nil {
			t.Fatalf("%s: renew: %v", what, err)
		}
		l, err := cs.CoordinationV1().Leases("vnest-system").Get(t.Context(), "vnest-syncer", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return l.Spec
	}
	check := func(what string, got coordinationv1.LeaseSpec, acquired, renewed time.Time) {
		t.Helper()
		if ptr.Deref(got.HolderIdentity, "") != "syncer-0_1" || ptr.Deref(got.LeaseDurationSeconds, 0) != 40 ||
			got.AcquireTime == nil || !got.AcquireTime.Time.Equal(acquired) || got.RenewTime == nil || !got.RenewTime.Time.Equal(renewed) {
			t.Errorf("%s: lease holder %v, duration %v, acquired %v, renewed %v; want syncer-0_1, 40, %s, %s", what,
				ptr.Deref(got.HolderIdentity, "<nil>"), ptr.Deref(got.LeaseDurationSeconds, 0), got.AcquireTime, got.RenewTime, acquired, renewed)
		}
	}

	check("created", leaseAfterRenew("created"), t0, t0)
	now = t0.Add(10 * time.Second)
	check("renewed", leaseAfterRenew("renewed"), t0, now)

	other := leaseAfterRenew("before the takeover")
	other.HolderIdentity = ptr.To("syncer-0_2")
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "vnest-system", Name: "vnest-syncer"}, Spec: other}
	if _, err := cs.CoordinationV1().Leases("vnest-system").Update(t.Context(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(20 * time.Second)
	check("taken over", leaseAfterRenew("taken over"), now, now)
}

// TestHeartbeatRetries: a renewal that fails (the super apiserver refusing the create) does not
// end the heartbeat: it tries again a period later and creates the Lease, runs renewedAgain once
// (the syncer then sets Syncing True where it held it back), and keeps renewing it until its
// context ends.
func TestHeartbeatRetries(t *testing.T) {
	cs := fake.NewClientset()
	failures := 2
	cs.PrependReactor("create", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failures > 0 {
			failures--
			return true, nil, errors.New("the super apiserver is restarting")
		}
		return false, nil, nil
	})
	now := time.Now()
	h := testHeartbeat(cs, &now)
	h.duration = 40 * time.Millisecond // renewed every 10 ms
	var renewedAgain atomic.Int32
	h.renewedAgain = func(context.Context) { renewedAgain.Add(1) }
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(ctx)
	}()
	updated := func(context.Context) (bool, error) {
		for _, a := range cs.Actions() {
			if a.Matches("update", "leases") {
				return true, nil
			}
		}
		return false, nil
	}
	if err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true, updated); err != nil {
		t.Errorf("the lease was not created and renewed after two failed creates: %v", err)
	}
	// now stands still: the renewals after the first went through within the duration.
	if n := renewedAgain.Load(); n != 1 {
		t.Errorf("renewedAgain ran %d times, want once: after the first renewal that went through", n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat did not stop with its context")
	}
}

// TestHeartbeatRenewedWithin: the syncer's heartbeat counts as renewed for the Lease's duration
// after the last renewal that went through; one that fails does not count.
func TestHeartbeatRenewedWithin(t *testing.T) {
	cs := fake.NewClientset()
	t0 := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	now := t0
	h := testHeartbeat(cs, &now)
	if h.renewedWithin(t0) {
		t.Error("never renewed: renewedWithin = true, want false")
	}
	if err := h.renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	cs.PrependReactor("update", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	now = t0.Add(20 * time.Second)
	if err := h.renew(t.Context()); err == nil {
		t.Fatal("a refused update renewed the lease")
	}
	for _, tc := range []struct {
		at   time.Duration // after t0, the last renewal that went through
		want bool
	}{{0, true}, {39 * time.Second, true}, {40 * time.Second, false}, {2 * time.Minute, false}} {
		if got := h.renewedWithin(t0.Add(tc.at)); got != tc.want {
			t.Errorf("%v after the last renewal: renewedWithin = %v, want %v", tc.at, got, tc.want)
		}
	}
}
