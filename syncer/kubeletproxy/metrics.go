package kubeletproxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vnest-dev/vnest/internal/promreg"
)

// Reasons of vnest_syncer_kubelet_proxy_refused_total: a request past its tenant's bound
// (Config.MaxRequestsPerTenant) or past the proxy's (Config.MaxRequests).
const (
	refusedTenantLimit = "tenant-limit"
	refusedProxyLimit  = "proxy-limit"
)

// proxyMetrics are the proxy's Prometheus series, so that an operator can see the proxy near its
// bound and alert on refusals, which reach the tenant's user as 429 and are logged at V(2) (a
// refusal at the proxy's bound at Info too, once a minute).
// Not by tenant: the logs name it.
type proxyMetrics struct {
	going   prometheus.Gauge
	refused *prometheus.CounterVec
}

// newProxyMetrics makes the series and registers them with reg when it is not nil (a series
// registered already, by an earlier proxy of the process, is used as it is).
func newProxyMetrics(reg prometheus.Registerer) proxyMetrics {
	m := proxyMetrics{
		going: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vnest_syncer_kubelet_proxy_requests",
			Help: "Kubelet API requests (logs, exec, attach, port-forward) of all tenants going through the kubelet proxy.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vnest_syncer_kubelet_proxy_refused_total",
			Help: "Kubelet API requests the kubelet proxy refused with 429, by reason: tenant-limit (--kubelet-proxy-max-requests-per-tenant) or proxy-limit (--kubelet-proxy-max-requests).",
		}, []string{"reason"}),
	}
	if reg != nil {
		m.going = promreg.Register(reg, m.going)
		m.refused = promreg.Register(reg, m.refused)
	}
	for _, reason := range []string{refusedTenantLimit, refusedProxyLimit} {
		m.refused.WithLabelValues(reason) // 0 from the start, so that a rate of it is there to alert on
	}
	return m
}
