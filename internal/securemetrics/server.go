package securemetrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Options are a metrics address's.
type Options struct {
	// BindAddress is the address to listen on, host:port (--metrics-bind-address).
	BindAddress string
	// Secure serves HTTPS and lets a request through only when the super cluster allows it
	// (--metrics-secure; see NewServer).
	Secure bool
	// CertDir holds the certificate of the secure address, tls.crt and tls.key, reloaded when
	// they change (--metrics-cert-dir); empty: a certificate signed by itself, made at start.
	CertDir string
	// ExtraHandlers are served besides /metrics, by ServeMux pattern.
	ExtraHandlers map[string]http.Handler
}

// Server serves a metrics address: /metrics of controller-runtime's registry (where the syncer
// and controller-runtime register their series) and the extra handlers, as controller-runtime's
// metrics server does. It is ours for the bounds that server has no option for: a connection
// waits at most a read timeout for its TLS handshake and a request's headers and body (that
// server has a header timeout of 32 s and no read timeout, so a request that declares a body and
// never sends it holds its connection and goroutine for ever, the answer unsent: net/http reads
// the unread body before it answers), the filter sees every request, the ServeMux's
// redirects and not-founds too, and net/http's log goes to the logger (serverLog).
type Server struct {
	opts     Options
	filter   metricsserver.Filter // nil: plain and open
	timeouts timeouts

	mu   sync.Mutex
	addr string
}

// timeouts bound how long a connection may wait for its TLS handshake and a request's headers
// and body (read), and for its next request (idle).
type timeouts struct{ read, idle time.Duration }

// defaultTimeouts: a scrape's request is a few hundred bytes; the idle timeout is
// controller-runtime's and kube-apiserver's. There is no write timeout: the answer is written as
// fast as the client reads it, a profile (/debug/pprof/profile?seconds=N) takes its N seconds,
// and only a client the filter let through gets an answer larger than the socket's buffers.
var defaultTimeouts = timeouts{read: 10 * time.Second, idle: 90 * time.Second}

// NewServer builds the metrics server of o. With o.Secure it serves HTTPS (HTTP/1.1 only) and
// lets a request through only when the super cluster (super) authenticates its bearer token
// (TokenReview) and authorizes its user to get the path, a non-resource URL
// (SubjectAccessReview); the server's identity needs create of tokenreviews and
// subjectaccessreviews. It starts nothing.
func NewServer(o Options, super *rest.Config) (*Server, error) {
	if _, ok := o.ExtraHandlers["/metrics"]; ok {
		return nil, errors.New("the metrics server serves /metrics itself")
	}
	s := &Server{opts: o, timeouts: defaultTimeouts}
	if !o.Secure {
		return s, nil
	}
	httpClient, err := rest.HTTPClientFor(super)
	if err != nil {
		return nil, fmt.Errorf("the metrics' review client: %w", err)
	}
	if s.filter, err = authFilter(super, httpClient); err != nil {
		return nil, fmt.Errorf("the metrics' review filter: %w", err)
	}
	return s, nil
}

// Addr is the address s listens on, "" until it does.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Start serves until ctx ends, then shuts down, waiting a minute at most for the requests
// going. It returns an error when it cannot listen.
func (s *Server) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	var tlsConfig *tls.Config
	if s.opts.Secure {
		var err error
		if tlsConfig, err = s.tlsConfig(ctx); err != nil {
			return err
		}
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.opts.BindAddress)
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	for pattern, h := range s.opts.ExtraHandlers {
		mux.Handle(pattern, h)
	}
	var handler http.Handler = mux
	if s.filter != nil {
		if handler, err = s.filter(logger, mux); err != nil {
			_ = l.Close()
			return err
		}
	}
	srv := &http.Server{
		Handler:     handler,
		BaseContext: func(net.Listener) context.Context { return ctx },
		// The header timeout bounds the TLS handshake too.
		ReadHeaderTimeout: s.timeouts.read,
		ReadTimeout:       s.timeouts.read,
		IdleTimeout:       s.timeouts.idle,
		ErrorLog:          log.New(serverLog{logger}, "", 0),
	}
	shutDown := make(chan struct{})
	go func() {
		defer close(shutDown)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			logger.Error(err, "Shutting down the metrics server")
		}
	}()
	s.mu.Lock()
	s.addr = l.Addr().String()
	s.mu.Unlock()
	logger.Info("Serving metrics", "address", s.addr, "secure", s.opts.Secure)
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-shutDown
	return nil
}

// tlsConfig serves the certificate of CertDir, reloaded when it changes, or one signed by
// itself; HTTP/1.1 only, as kubebuilder's projects by default: HTTP/2's stream reset and
// continuation floods (CVE-2023-44487, CVE-2023-39325) cost a server more than a metrics scrape
// needs, and anyone who reaches the address can send them before any check.
func (s *Server) tlsConfig(ctx context.Context) (*tls.Config, error) {
	c := &tls.Config{NextProtos: []string{"http/1.1"}}
	if dir := s.opts.CertDir; dir != "" {
		w, err := certwatcher.New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		if err != nil {
			return nil, fmt.Errorf("the metrics certificate: %w", err)
		}
		go func() {
			if err := w.Start(ctx); err != nil {
				klog.FromContext(ctx).Error(err, "Watching the metrics certificate")
			}
		}()
		c.GetCertificate = w.GetCertificate
		return c, nil
	}
	cert, key, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{{127, 0, 0, 1}}, nil)
	if err != nil {
		return nil, fmt.Errorf("the metrics' self-signed certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("the metrics' self-signed certificate: %w", err)
	}
	c.Certificates = []tls.Certificate{pair}
	return c, nil
}

// serverLog is net/http's log of the server's connections: a failed TLS handshake, which anyone
// who reaches the address causes at will (a plain HTTP request to it, a port scan), at V(4),
// else a line on stderr each; the rest, such as a handler's panic, as errors.
type serverLog struct{ logr.Logger }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		l.V(4).Info("Metrics connection's TLS handshake failed", "err", msg)
	} else {
		l.Error(errors.New(msg), "Metrics server")
	}
	return len(p), nil
}
