package fairqueue

import (
	"testing"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := newBackoff[string](10*time.Millisecond, 50*time.Millisecond)
	for i, want := range []time.Duration{10, 20, 40, 50, 50} {
		if got := b.when("a", "x"); got != want*time.Millisecond {
			t.Errorf("failure %d: wait %v, want %v", i+1, got, want*time.Millisecond)
		}
	}
	if got := b.when("b", "x"); got != 10*time.Millisecond {
		t.Errorf("another tenant's item: wait %v, want 10ms (counts are per tenant)", got)
	}
	b.forget("a", "x")
	if got := b.when("a", "x"); got != 10*time.Millisecond {
		t.Errorf("after forget: wait %v, want 10ms", got)
	}
}

// A removed tenant's failing items keep no counts: they lost their waits to RemoveTenant, so
// they never come back to be forgotten.
func TestRemoveTenantDropsBackoff(t *testing.T) {
	q := New[string](time.Hour, time.Hour)
	defer q.ShutDown()
	q.AddTenant("gone")
	q.AddTenant("kept")
	q.AddRateLimited("gone", "x")
	q.AddRateLimited("gone", "y")
	q.AddRateLimited("kept", "x")
	q.RemoveTenant("gone")
	if n := q.NumRequeues("gone", "x"); n != 0 {
		t.Errorf("NumRequeues(gone, x) = %d after RemoveTenant, want 0", n)
	}
	if n := q.NumRequeues("kept", "x"); n != 1 {
		t.Errorf("NumRequeues(kept, x) = %d, want 1", n)
	}
	if n := q.backoff.tenants(); n != 1 {
		t.Errorf("%d tenants with back-off counts, want 1 (kept)", n)
	}
	q.Forget("kept", "x")
	if n := q.backoff.tenants(); n != 0 {
		t.Errorf("%d tenants with back-off counts after the last Forget, want 0", n)
	}
}
