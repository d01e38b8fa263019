package syncer

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestForgetTenantDropsEverySeries: once a tenant is no longer served, none of the syncer's
// series names it, and the other tenants' stay.
func TestForgetTenantDropsEverySeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	for _, tenant := range []string{"gone", "kept"} {
		m.depth.WithLabelValues(tenant, string(kindPod)).Set(1)
		m.queueWait(tenant, true, time.Millisecond)
		m.queueWait(tenant, false, time.Millisecond)
		m.observe(tenant, kindPod, time.Millisecond, errors.New("refused"))
		m.patrolDrift(tenant, kindPod, 1)
	}
	m.forgetTenant("gone")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, f := range families {
		for _, series := range f.GetMetric() {
			for _, l := range series.GetLabel() {
				switch {
				case l.GetName() == "tenant" && l.GetValue() == "gone":
					t.Errorf("%s still has a series of the forgotten tenant: %v", f.GetName(), series.GetLabel())
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

// TestMetricsMuxProfiling: /debug/pprof/ is served only with --profiling; /metrics and
// /healthz always.
func TestMetricsMuxProfiling(t *testing.T) {
	for _, profiling := range []bool{false, true} {
		mux := metricsMux(profiling)
		pprofWant := http.StatusNotFound
		if profiling {
			pprofWant = http.StatusOK
		}
		for path, want := range map[string]int{
			"/metrics":                  http.StatusOK,
			"/healthz":                  http.StatusOK,
			"/debug/pprof/":             pprofWant,
			"/debug/pprof/heap?debug=1": pprofWant,
			"/debug/pprof/cmdline":      pprofWant,
		} {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != want {
				t.Errorf("profiling %v: GET %s = %d, want %d", profiling, path, rec.Code, want)
			}
		}
	}
}
