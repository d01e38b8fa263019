package kubeletproxy

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/httpstream"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/keylimit"
	"github.com/vnest-dev/vnest/internal/logevery"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Config is what a Server needs.
type Config struct {
	// Tenants returns the tenants served right now: Running, with synced caches.
	Tenants func() []Tenant
	// SuperPods lists the super cluster's pods (the syncer's informer of owned objects).
	SuperPods corelisters.PodLister
	// Super is the syncer's client configuration of the super cluster; every request is
	// proxied with its credentials.
	Super *rest.Config
	// ServingHosts are the IPs and DNS names of the self-signed serving certificate.
	ServingHosts []string
	// Handlers serve other paths of the syncer's tenant-apiserver API on the same listener,
	// after the caller is identified as t exactly as for the kubelet API (path → handler).
	Handlers map[string]TenantHandler
	// PinMismatch, when set, is told of a certificate that the CA of tenant t signed for the
	// kubelet client's name but that is not t's pinned one (Tenant.KubeletClient), after it
	// was refused: the manager may have renewed the certificate, and the caller re-reads the
	// pin. It runs in the request's goroutine (ctx is the request's) and must not block.
	PinMismatch func(ctx context.Context, t Tenant)
	// MaxRequestsPerTenant bounds the kubelet API requests (logs, exec, attach, port-forward)
	// one tenant has going through the proxy at once; more are refused with 429 Too Many
	// Requests. 0 is DefaultMaxRequestsPerTenant.
	MaxRequestsPerTenant int
	// MaxRequests bounds the kubelet API requests all tenants together have going through the
	// proxy at once; more are refused with 429 Too Many Requests. 0 is DefaultMaxRequests.
	MaxRequests int
	// Registerer, when set, gets the proxy's metrics: the requests going and those refused at
	// either bound (metrics).
	Registerer prometheus.Registerer
}

// DefaultMaxRequestsPerTenant is the default of Config.MaxRequestsPerTenant. A tenant
// apiserver's own in-flight limit does not count long-running requests, so without a bound one
// tenant could open streams until the syncer runs out of memory, for every tenant: each holds
// goroutines, a connection on either side and a buffer for as long as the user likes. The
// upstream conformance suite, 6 processes in parallel through the proxy, uses a handful at a
// time; 256 leaves room for many users following logs at once. Measured
// (BenchmarkProxiedStreamBytes, docs/benchmarks.md, session 37), an open exec stream costs the
// syncer about 96 KB of heap and 3 goroutines with 25 KB of stacks, a `logs -f` 77 KB and 4 with
// 31 KB: a tenant at 256 streams holds about 30 MiB.
const DefaultMaxRequestsPerTenant = 256

// DefaultMaxRequests is the default of Config.MaxRequests: the per-tenant bound alone lets the
// streams of about 33 tenants at their limit fill the syncer's 1 GiB (manifests/syncer), and
// the syncer, out of memory, would stop syncing every tenant. 2,048 streams hold about 240 MiB
// (BenchmarkProxiedStreamBytes: about 120 KB each, heap and stacks), eight tenants at their
// limit; past it a request is refused with 429 and syncing goes on.
const DefaultMaxRequests = 2048

// TenantHandler serves a request of the apiserver of tenant t.
type TenantHandler func(w http.ResponseWriter, r *http.Request, t Tenant)

// Server serves the kubelet API of virtual nodes. Make it with New, start it with Start.
type Server struct {
	tenants   func() []Tenant
	superPods corelisters.PodLister
	core      rest.Interface // builds the super apiserver's pod URLs
	client    *http.Client   // logs
	transport http.RoundTripper
	upgrade   proxy.UpgradeRequestRoundTripper // exec, attach, port-forward
	cert      tls.Certificate
	now       func() time.Time
	handlers  map[string]TenantHandler
	pinMiss   func(context.Context, Tenant)
	inFlight  *keylimit.Limit // kubelet API requests going, by Tenant.ClusterKey
	total     *keylimit.Limit // kubelet API requests going, all tenants' (one key, "")
	metrics   proxyMetrics
	// refusedLogged lets a refusal at the proxy's bound (total) be logged once per
	// refusedLogEvery; the refused counter has them all.
	refusedLogged *logevery.Every

	// readHeaderTimeout and idleTimeout bound how long a connection may wait for a
	// request's headers (the TLS handshake included) and for the next request
	// (defaultReadHeaderTimeout, defaultIdleTimeout; shorter in tests).
	readHeaderTimeout, idleTimeout time.Duration
}

// Anyone who reaches the listener, a tenant pod say, may open connections to it: without these
// bounds a connection that sends no request, or half its headers, or nothing after a request,
// would hold a goroutine and a socket for ever. The idle timeout is the kubelet's. There is no
// ReadTimeout or WriteTimeout: they would cut `logs -f`, exec, attach and port-forward
// streams, which last as long as the user wants (an upgraded connection has no deadlines once
// its headers are read).
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 90 * time.Second
)

// refusedLogEvery is how often, at most, a refusal at the proxy's bound is logged at Info: every
// identified tenant's users can provoke one per request.
const refusedLogEvery = time.Minute

// New builds a Server, with a fresh self-signed serving certificate. It starts nothing.
func New(c Config) (*Server, error) {
	if c.Tenants == nil || c.SuperPods == nil || c.Super == nil || len(c.ServingHosts) == 0 {
		return nil, errors.New("kubelet proxy: Tenants, SuperPods, Super and ServingHosts are required")
	}
	cs, err := kubernetes.NewForConfig(c.Super)
	if err != nil {
		return nil, fmt.Errorf("kubelet proxy: super cluster client: %w", err)
	}
	rt, err := rest.TransportFor(c.Super)
	if err != nil {
		return nil, fmt.Errorf("kubelet proxy: super cluster transport: %w", err)
	}
	upgrade, err := upgradeTransport(c.Super)
	if err != nil {
		return nil, err
	}
	cert, err := selfSigned(c.ServingHosts)
	if err != nil {
		return nil, err
	}
	return &Server{
		tenants:   c.Tenants,
		pinMiss:   c.PinMismatch,
		superPods: c.SuperPods,
		core:      cs.CoreV1().RESTClient(),
		client: &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		transport:     rt,
		upgrade:       upgrade,
		cert:          cert,
		now:           time.Now,
		handlers:      c.Handlers,
		inFlight:      keylimit.New(cmp.Or(c.MaxRequestsPerTenant, DefaultMaxRequestsPerTenant)),
		total:         keylimit.New(cmp.Or(c.MaxRequests, DefaultMaxRequests)),
		metrics:       newProxyMetrics(c.Registerer),
		refusedLogged: logevery.New(refusedLogEvery),

		readHeaderTimeout: defaultReadHeaderTimeout,
		idleTimeout:       defaultIdleTimeout,
	}, nil
}

// upgradeTransport dials the super apiserver for upgraded (SPDY, WebSocket) connections over
// HTTP/1.1 with the syncer's TLS credentials and adds its other credentials (a bearer token)
// to the request, as `kubectl proxy` does.
func upgradeTransport(cfg *rest.Config) (proxy.UpgradeRequestRoundTripper, error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, fmt.Errorf("kubelet proxy: super cluster transport: %w", err)
	}
	tlsConfig, err := transport.TLSConfigFor(tc)
	if err != nil {
		return nil, fmt.Errorf("kubelet proxy: super cluster TLS: %w", err)
	}
	conn := utilnet.SetOldTransportDefaults(&http.Transport{
		TLSClientConfig: tlsConfig,
		DialContext:     (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	})
	wrap, err := transport.HTTPWrappersForConfig(tc, proxy.MirrorRequest)
	if err != nil {
		return nil, fmt.Errorf("kubelet proxy: super cluster credentials: %w", err)
	}
	return proxy.NewUpgradeRequestRoundTripper(conn, wrap), nil
}

// selfSigned makes the serving certificate for hosts. Nobody verifies it: kube-apiserver
// checks kubelets' certificates only with --kubelet-certificate-authority, which tenant
// apiservers do not set (see the package doc).
func selfSigned(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet proxy: serving key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "vnest-kubelet-proxy"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour), // made anew at every start
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet proxy: serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Start listens on addr (host:port) and serves HTTPS until ctx ends. It returns once it
// listens, with the address it listens on.
func (s *Server) Start(ctx context.Context, addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet proxy: %w", err)
	}
	srv := &http.Server{
		Handler: s,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{s.cert},
			// Requested, not verified by the handshake: ServeHTTP verifies it against each
			// tenant's CA and answers a clear error instead of a failed handshake.
			ClientAuth: tls.RequestClientCert,
			MinVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: s.readHeaderTimeout,
		IdleTimeout:       s.idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.FromContext(ctx).Error(err, "Kubelet proxy stopped serving")
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	klog.FromContext(ctx).Info("Kubelet proxy serving", "address", l.Addr().String())
	return l.Addr(), nil
}

// ServeHTTP identifies the tenant by its client certificate, translates the kubelet request
// to a pod subresource, checks that the pod is the tenant's, and proxies.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context())
	var chain []*x509.Certificate
	if r.TLS != nil {
		chain = r.TLS.PeerCertificates
	}
	t, err := identify(chain, s.tenants(), s.now())
	if err != nil {
		logger.V(2).Info("Kubelet proxy refused a caller", "remote", r.RemoteAddr, "err", err)
		dropBody(w, r)
		writeError(w, err, isUpgrade(r))
		var pm *pinMismatch
		if errors.As(err, &pm) && s.pinMiss != nil {
			s.pinMiss(r.Context(), pm.tenant)
		}
		return
	}
	if h, ok := s.handlers[r.URL.Path]; ok {
		h(w, r, t)
		return
	}
	req, err := translate(r.Method, r.URL.Path, r.URL.Query())
	if err != nil {
		writeError(w, err, isUpgrade(r))
		return
	}
	logger = logger.WithValues("tenant", t.ClusterKey, "pod", klog.KRef(req.Namespace, req.Pod), "subresource", req.Subresource)
	// Counted once the tenant is known, so that a stranger's requests take nothing from it.
	if !s.inFlight.Acquire(t.ClusterKey) {
		s.metrics.refused.WithLabelValues(refusedTenantLimit).Inc()
		logger.V(2).Info("Kubelet proxy refused a request: the tenant has as many going as it may", "limit", s.inFlight.Max())
		w.Header().Set("Retry-After", "1")
		writeError(w, tooManyRequests("tenant %s has %d requests (logs, exec, attach, port-forward) going through the kubelet proxy, "+
			"the most it may (the syncer's --kubelet-proxy-max-requests-per-tenant); try again when one has ended", t.ClusterKey, s.inFlight.Max()), req.Streaming)
		return
	}
	defer s.inFlight.Release(t.ClusterKey)
	if !s.total.Acquire("") {
		s.metrics.refused.WithLabelValues(refusedProxyLimit).Inc()
		const msg = "Kubelet proxy refused a request: all tenants together have as many going as the proxy may serve"
		if s.refusedLogged.Allow(s.now()) {
			logger.Info(msg+"; logged once a minute, the others at V(2)", "limit", s.total.Max())
		} else {
			logger.V(2).Info(msg, "limit", s.total.Max())
		}
		w.Header().Set("Retry-After", "1")
		writeError(w, tooManyRequests("the kubelet proxy has %d requests (logs, exec, attach, port-forward) of all tenants going, "+
			"the most it may (the syncer's --kubelet-proxy-max-requests); try again when one has ended", s.total.Max()), req.Streaming)
		return
	}
	defer s.total.Release("")
	s.metrics.going.Inc()
	defer s.metrics.going.Dec()
	superPod, err := resolve(t, s.superPods, req)
	if err != nil {
		logger.V(2).Info("Kubelet proxy refused a request", "err", err)
		writeError(w, err, req.Streaming)
		return
	}
	loc := s.core.Get().Namespace(superPod.Namespace).Resource("pods").Name(superPod.Name).SubResource(req.Subresource).URL()
	loc.RawQuery = req.Params.Encode()
	logger.V(2).Info("Kubelet proxy forwarding", "superPod", klog.KObj(superPod))
	if req.Streaming {
		s.stream(w, r, loc)
		return
	}
	s.logs(w, r, loc)
}

func isUpgrade(r *http.Request) bool { return httpstream.IsUpgradeRequest(r) }

// dropBody gives up the body of a request that is refused unread. Else net/http reads up to
// 256 KiB of it before it writes the answer, and again once the handler returns, with no
// deadline (there is no ReadTimeout, see defaultIdleTimeout): a stranger whose request declares
// a body and never sends it would hold the connection and its goroutine for ever. The reads
// fail at once instead, and the connection is closed after the answer.
func dropBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
}

// resolve returns the super pod a tenant request may reach: the pod of the same name in the
// tenant namespace's super namespace, carrying the ownership labels of this tenant and tenant
// namespace (mapping.OwnedByTenant; the lister's own label filter is not relied on), made from
// the tenant pod that exists now (same UID).
func resolve(t Tenant, superPods corelisters.PodLister, req request) (*corev1.Pod, error) {
	superNS := mapping.SuperNamespace(t.ClusterKey, req.Namespace)
	sp, err := superPods.Pods(superNS).Get(req.Pod)
	if apierrors.IsNotFound(err) {
		return nil, notFound("pod %s/%s has no pod in the super cluster (not synced yet, or gone)", req.Namespace, req.Pod)
	}
	if err != nil {
		return nil, err
	}
	if !mapping.OwnedByTenant(sp, t.ClusterKey, req.Namespace) {
		return nil, forbidden("the super pod %s/%s is not one of this tenant's pods of namespace %s", superNS, req.Pod, req.Namespace)
	}
	uid := mapping.TenantUID(sp)
	if req.UID != "" && req.UID != uid {
		return nil, notFound("pod %s/%s with UID %s has no pod in the super cluster", req.Namespace, req.Pod, req.UID)
	}
	if t.Pods != nil {
		tp, err := t.Pods.Pods(req.Namespace).Get(req.Pod)
		if apierrors.IsNotFound(err) {
			return nil, notFound("pod %s/%s does not exist in the tenant", req.Namespace, req.Pod)
		}
		if err != nil {
			return nil, err
		}
		if tp.UID != uid {
			return nil, notFound("the super pod of %s/%s belongs to an earlier pod of that name", req.Namespace, req.Pod)
		}
	}
	return sp, nil
}

// logs streams the super pod's log, flushing every chunk so that follow streams.
func (s *Server) logs(w http.ResponseWriter, r *http.Request, loc *url.URL) {
	out, err := http.NewRequestWithContext(r.Context(), http.MethodGet, loc.String(), nil)
	if err != nil {
		writeError(w, err, false)
		return
	}
	resp, err := s.client.Do(out)
	if err != nil {
		writeError(w, fmt.Errorf("reaching the super apiserver: %w", err), false)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		writeError(w, superError(resp), false)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				klog.FromContext(r.Context()).V(2).Info("Log stream from the super apiserver ended", "err", err)
			}
			return
		}
	}
}

// stream proxies an upgraded connection (SPDY or WebSocket) to the super apiserver. Errors
// before the upgrade reach the caller as a Status; the super apiserver's own are relayed.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, loc *url.URL) {
	h := proxy.NewUpgradeAwareHandler(loc, s.transport, false, true, responder{})
	h.UpgradeTransport = s.upgrade
	h.UseLocationHost = true
	out := outgoing(r)
	out = out.WithContext(klog.NewContext(out.Context(), streamEndLogger(klog.FromContext(out.Context()))))
	h.ServeHTTP(closedWithRequest{w, r.Context()}, out)
}

// closedWithRequest closes the connection it hands over (Hijack) when ctx ends. The handler
// hijacks the caller's connection for an upgraded stream, and the server's Close at the end of
// the proxy's context closes only the connections it still owns: without this an exec, attach or
// port-forward stream would outlive the proxy until either end closed it. ctx is the request's,
// which ends with the proxy's (Start's BaseContext) or when the handler returns, once the
// stream is over anyway.
type closedWithRequest struct {
	http.ResponseWriter
	ctx context.Context
}

func (c closedWithRequest) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(c.ResponseWriter).Hijack()
	if err == nil {
		context.AfterFunc(c.ctx, func() { _ = conn.Close() })
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the server's writer (Flush, deadlines) for an
// answer that is not upgraded.
func (c closedWithRequest) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type responder struct{}

func (responder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	writeError(w, err, true)
}

// outgoing is r without credentials or identity headers: the request is sent with the
// syncer's credentials, and nothing the tenant side put in (Impersonate-*, X-Remote-*) may
// change who the super apiserver thinks is asking.
func outgoing(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	for name := range out.Header {
		if droppedHeader(name) {
			out.Header.Del(name)
		}
	}
	return out
}

func droppedHeader(name string) bool {
	name = http.CanonicalHeaderKey(name)
	switch name {
	case "Authorization", "Proxy-Authorization", "Cookie":
		return true
	}
	return strings.HasPrefix(name, "Impersonate-") || strings.HasPrefix(name, "X-Remote-")
}
