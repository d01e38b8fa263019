package syncer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"k8s.io/client-go/rest"

	"github.com/vnest-dev/vnest/internal/securemetrics"
)

// serveMetrics serves the metrics address (newMetricsServer) unless it is off, until ctx ends.
// It returns an error when the server cannot start, such as when the address is taken.
func (s *Syncer) serveMetrics(ctx context.Context) error {
	addr := s.opts.MetricsBindAddress
	if addressOff(addr) {
		return nil
	}
	srv, err := newMetricsServer(s.opts.Options, s.opts.super)
	if err != nil {
		return err
	}
	if _, err := securemetrics.Start(ctx, srv); err != nil {
		return fmt.Errorf("serving metrics on %s: %w", addr, err)
	}
	return nil
}

// newMetricsServer is the metrics server on o's metrics address: /metrics of
// ctrlmetrics.Registry, where New registers the syncer's series, /healthz and, with
// --profiling, Go's /debug/pprof/ handlers. With --metrics-secure it serves HTTPS and lets a
// request through only when super's TokenReview authenticates its bearer token and a
// SubjectAccessReview allows its user to get the path: the series name every tenant, a
// profile holds any of their objects, and tenant pods reach the syncer's pod IP.
func newMetricsServer(o *Options, super *rest.Config) (*securemetrics.Server, error) {
	srv, err := securemetrics.NewServer(securemetrics.Options{
		BindAddress: o.MetricsBindAddress, Secure: o.MetricsSecure, CertDir: o.MetricsCertDir, ExtraHandlers: metricsExtraHandlers(o.Profiling),
	}, super)
	if err != nil {
		return nil, fmt.Errorf("the metrics server: %w", err)
	}
	return srv, nil
}

// metricsExtraHandlers are the metrics address's handlers besides /metrics: /healthz and, when
// profiling, Go's /debug/pprof/ handlers.
func metricsExtraHandlers(profiling bool) map[string]http.Handler {
	h := map[string]http.Handler{"/healthz": http.HandlerFunc(healthz)}
	if profiling {
		h["/debug/pprof/"] = http.HandlerFunc(pprof.Index) // and the named profiles: heap, goroutine, allocs, …
		h["/debug/pprof/cmdline"] = http.HandlerFunc(pprof.Cmdline)
		h["/debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
		h["/debug/pprof/symbol"] = http.HandlerFunc(pprof.Symbol)
		h["/debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
	}
	return h
}

// serveHealth serves /healthz on addr, plain and open to anyone (the kubelet's probe carries
// no token; the answer tells nothing about tenants), unless addr is off, until ctx ends. It
// returns the address it listens on.
func serveHealth(ctx context.Context, addr string) (net.Addr, error) {
	if addressOff(addr) {
		return nil, nil
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serving health probes: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", healthz)
	// Tenant pods reach the pod IP: without an idle and a read timeout a connection idle after a
	// request, or whose request body never comes, would hold a goroutine and a file descriptor
	// for ever. /healthz streams nothing, so the whole request and answer are bounded too.
	t := healthTimeouts
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: t.read, ReadTimeout: t.read, WriteTimeout: t.read, IdleTimeout: t.idle}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr(), nil
}

// healthTimeouts bound how long the health probe server waits for a request (headers and body)
// and for the next one on a connection; a variable for the tests.
var healthTimeouts = struct{ read, idle time.Duration }{10 * time.Second, 90 * time.Second}

// healthz answers that the syncer runs.
func healthz(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
