package syncer

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vnest-dev/vnest/internal/promreg"
)

// metrics are the syncer's Prometheus series, labelled by tenant (cluster key) and kind.
type metrics struct {
	depth   *prometheus.GaugeVec
	wait    *prometheus.HistogramVec
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
	drift   *prometheus.GaugeVec
	driftT  *prometheus.CounterVec

	// mu and live: series are written only for the tenants served (serve, forgetTenant), so
	// a patrol, heartbeat or sync that still holds a tenant being stopped cannot bring its
	// series back after forgetTenant dropped them.
	mu   sync.RWMutex
	live map[string]bool
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		live: map[string]bool{},
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vnest_syncer_queue_depth", Help: "Keys waiting in the fair queue, by tenant and kind.",
		}, []string{"tenant", "kind"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vnest_syncer_queue_wait_seconds", Help: "Time a key waited in the fair queue for a worker, by tenant and lane (new: a tenant object just created or deleted; update: the rest).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"tenant", "lane"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vnest_syncer_sync_duration_seconds", Help: "Time to reconcile one key, by tenant and kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"tenant", "kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vnest_syncer_sync_errors_total", Help: "Reconciles that failed and were re-queued, by tenant and kind.",
		}, []string{"tenant", "kind"}),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vnest_syncer_patrol_drift", Help: "Keys the last patrol found out of sync (counterpart missing or stale; none of a namespace being deleted), by tenant and kind.",
		}, []string{"tenant", "kind"}),
		driftT: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vnest_syncer_patrol_drift_total", Help: "Keys patrols found out of sync, by tenant and kind.",
		}, []string{"tenant", "kind"}),
	}
	if reg != nil { // a syncer made again in the process writes to the series registered first
		m.depth, m.wait, m.latency = promreg.Register(reg, m.depth), promreg.Register(reg, m.wait), promreg.Register(reg, m.latency)
		m.errors, m.drift, m.driftT = promreg.Register(reg, m.errors), promreg.Register(reg, m.drift), promreg.Register(reg, m.driftT)
	}
	return m
}

// serve has the metrics take tenant's series, until forgetTenant.
func (m *metrics) serve(tenant string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[tenant] = true
}

// serving runs write, which writes series of tenant, if the tenant is served; under the read
// lock, so forgetTenant cannot drop its series in between.
func (m *metrics) serving(tenant string, write func()) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.live[tenant] {
		write()
	}
}

func (m *metrics) observe(tenant string, k kind, d time.Duration, err error) {
	m.serving(tenant, func() {
		m.latency.WithLabelValues(tenant, string(k)).Observe(d.Seconds())
		if err != nil {
			m.errors.WithLabelValues(tenant, string(k)).Inc()
		}
	})
}

func (m *metrics) queueWait(tenant string, urgent bool, d time.Duration) {
	lane := "update"
	if urgent {
		lane = "new"
	}
	m.serving(tenant, func() { m.wait.WithLabelValues(tenant, lane).Observe(d.Seconds()) })
}

func (m *metrics) queueDepth(tenant string, k kind, n int) {
	m.serving(tenant, func() { m.depth.WithLabelValues(tenant, string(k)).Set(float64(n)) })
}

func (m *metrics) patrolDrift(tenant string, k kind, n int) {
	m.serving(tenant, func() {
		m.drift.WithLabelValues(tenant, string(k)).Set(float64(n))
		m.driftT.WithLabelValues(tenant, string(k)).Add(float64(n))
	})
}

// forgetTenant drops a tenant's series once the syncer stops serving it.
func (m *metrics) forgetTenant(tenant string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, tenant)
	l := prometheus.Labels{"tenant": tenant}
	m.depth.DeletePartialMatch(l)
	m.wait.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.drift.DeletePartialMatch(l)
	m.driftT.DeletePartialMatch(l)
}
