package syncer

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestForgetTenantDropsEverySeries: once a tenant is no longer served, none of the syncer's
// series names it, also when a patrol or sync that still held the tenant writes one after, and
// the other tenants' stay. A tenant never served gets none.
func TestForgetTenantDropsEverySeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	write := func(tenant string) {
		m.queueDepth(tenant, kindPod, 1)
		m.queueWait(tenant, true, time.Millisecond)
		m.queueWait(tenant, false, time.Millisecond)
		m.observe(tenant, kindPod, time.Millisecond, errors.New("refused"))
		m.patrolDrift(tenant, kindPod, 1)
	}
	for _, tenant := range []string{"gone", "kept"} {
		m.serve(tenant)
		write(tenant)
	}
	m.forgetTenant("gone")
	write("gone")
	write("never-served")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, f := range families {
		for _, series := range f.GetMetric() {
			for _, l := range series.GetLabel() {
				switch {
				case l.GetName() == "tenant" && l.GetValue() != "kept":
					t.Errorf("%s has a series of a tenant not served: %v", f.GetName(), series.GetLabel())
				case l.GetName() == "tenant":
					kept++
				}
			}
		}
	}
	if want := 7; kept != want { // depth, wait ×2 lanes, latency, errors, drift, drift total
		t.Errorf("%d series of the other tenant left, want %d", kept, want)
	}
}

// TestMetricsMadeAgain: a syncer's metrics made again on the registry of an earlier one (a
// second syncer in the process) write to the series the registry serves.
func TestMetricsMadeAgain(t *testing.T) {
	reg := prometheus.NewRegistry()
	newMetrics(reg)
	m := newMetrics(reg)
	m.serve("demo")
	m.observe("demo", kindPod, time.Millisecond, errors.New("refused"))
	m.patrolDrift("demo", kindPod, 1)
	for _, name := range []string{"vnest_syncer_sync_duration_seconds", "vnest_syncer_sync_errors_total", "vnest_syncer_patrol_drift"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series gathered (%v), want 1", name, n, err)
		}
	}
}
