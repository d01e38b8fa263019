package kubeletproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/keylimit"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// fakeSuper stands in for the super apiserver: it records what reached it, streams logs in two
// steps (the second after release is closed) and echoes upgraded connections.
type fakeSuper struct {
	*httptest.Server
	release chan struct{}
	// open counts the streams it holds right now: logs past their first line, and upgraded
	// connections.
	open atomic.Int64

	mu   sync.Mutex
	reqs []*http.Request
}

func newFakeSuper(t testing.TB) *fakeSuper {
	f := &fakeSuper{release: make(chan struct{})}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSuper) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Clone(r.Context()))
	f.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/log") && r.URL.Query().Get("previous") == "true":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"previous terminated container \"app\" in pod \"web\" not found","reason":"BadRequest","code":400}`)
	case strings.HasSuffix(r.URL.Path, "/log"):
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "line 1\n")
		w.(http.Flusher).Flush()
		f.open.Add(1)
		defer f.open.Add(-1)
		select {
		case <-f.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "line 2\n")
	default: // exec, attach, portforward
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
		_ = rw.Flush()
		f.open.Add(1)
		defer f.open.Add(-1)
		if r.URL.Query().Get("command") == "reset" {
			// The first line read, the connection goes away with a reset: no TLS close_notify,
			// no FIN (streamEnded).
			_, _ = rw.ReadString('\n')
			if tc, ok := conn.(*tls.Conn).NetConn().(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
				_ = tc.Close()
			}
			return
		}
		if r.URL.Query().Get("command") == "yes" { // writes until the connection fails
			for {
				if _, err := conn.Write([]byte("y\n")); err != nil {
					return
				}
			}
		}
		_, _ = io.Copy(conn, rw) // echo
	}
}

func (f *fakeSuper) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...)
}

func (f *fakeSuper) restConfig() *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	return &rest.Config{Host: f.URL, BearerToken: "syncer-token", TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

func podLister(t testing.TB, pods ...*corev1.Pod) corelisters.PodLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range pods {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return corelisters.NewPodLister(idx)
}

func tenantPod(ns, name string, uid types.UID) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid}}
}

// superPod is the super pod of tenant pod ns/name of the tenant with clusterKey, with the
// ownership of (ownerKey, ownerNS) and the tenant UID uid.
func superPod(clusterKey, ns, name, ownerKey, ownerNS string, uid types.UID) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: clusterKey + "-" + ns, Name: name,
		Labels:      map[string]string{ownership.LabelClusterKey: ownerKey, ownership.LabelTenantNamespace: ownerNS},
		Annotations: map[string]string{ownership.AnnotationTenantUID: string(uid)},
	}}
}

type testProxy struct {
	url         string
	super       *fakeSuper
	a, b, other tls.Certificate // kubelet client certificates of tenants a-1, b-2 and of no tenant
	// aMinted is a kubelet client certificate of a-1's CA that is not a-1's pinned one.
	aMinted tls.Certificate
	// pinMisses are the tenants Config.PinMismatch was told of.
	pinMisses chan string
}

// startProxy starts a proxy serving tenants a-1 and b-2 until the end of the test, after
// tweaks change its Server.
func startProxy(t testing.TB, tweaks ...func(*Server)) *testProxy {
	t.Helper()
	return startProxyUntil(t, t.Context(), tweaks...)
}

// startProxyUntil is startProxy serving until ctx ends.
func startProxyUntil(t testing.TB, ctx context.Context, tweaks ...func(*Server)) *testProxy {
	t.Helper()
	caA, caB := newTestCA(t), newTestCA(t)
	a := caA.kubeletClient(t)
	aMinted := caA.reissue(t, layout.KubeletClientCertName, layout.KubeletClientCertSpec())
	super := newFakeSuper(t)
	pinMisses := make(chan string, 10)
	tenants := []Tenant{
		{ClusterKey: "a-1", CA: caA.pool, KubeletClient: a.Leaf.Raw, Pods: podLister(t,
			tenantPod("default", "web", "uid-web"), tenantPod("default", "stolen", "uid-stolen"),
			tenantPod("default", "stale", "uid-new"), tenantPod("default", "unsynced", "uid-unsynced"))},
		{ClusterKey: "b-2", CA: caB.pool, Pods: podLister(t, tenantPod("default", "web", "uid-b-web"), tenantPod("default", "db", "uid-b-db"))},
	}
	superPods := podLister(t,
		superPod("a-1", "default", "web", "a-1", "default", "uid-web"),
		superPod("a-1", "default", "stolen", "b-2", "default", "uid-stolen"), // another tenant's label
		superPod("a-1", "default", "stale", "a-1", "default", "uid-old"),     // an earlier pod's
		superPod("b-2", "other", "web", "b-2", "default", "uid-b-web"),       // wrong tenant namespace
		superPod("b-2", "default", "db", "b-2", "default", "uid-b-db"),
	)
	s, err := New(Config{Tenants: func() []Tenant { return tenants }, SuperPods: superPods, Super: super.restConfig(), ServingHosts: []string{"127.0.0.1"},
		Handlers:    map[string]TenantHandler{"/vnest/echo-tenant": func(w http.ResponseWriter, _ *http.Request, t Tenant) { fmt.Fprint(w, t.ClusterKey) }},
		PinMismatch: func(_ context.Context, t Tenant) { pinMisses <- t.ClusterKey }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tweak := range tweaks {
		tweak(s)
	}
	addr, err := s.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &testProxy{url: "https://" + addr.String(), super: super, a: a, b: caB.kubeletClient(t), other: newTestCA(t).kubeletClient(t),
		aMinted: aMinted, pinMisses: pinMisses}
}

func (p *testProxy) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{InsecureSkipVerify: true} // as kube-apiserver without --kubelet-certificate-authority
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

// onlySuperRequest returns the one request that reached the super apiserver, which must be
// method on path.
func (p *testProxy) onlySuperRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	reqs := p.super.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests reached the super apiserver, want 1", len(reqs))
	}
	if got := reqs[0]; got.Method != method || got.URL.Path != path {
		t.Errorf("super request %s %s, want %s %s", got.Method, got.URL.Path, method, path)
	}
	return reqs[0]
}

// TestHandlersIdentifyTheTenant: a path of Config.Handlers is served only to an identified
// tenant apiserver, and with that tenant; a certificate of a pinned tenant's CA that is not its
// pinned one is refused, and Config.PinMismatch told of it.
func TestHandlersIdentifyTheTenant(t *testing.T) {
	p := startProxy(t)
	for name, tc := range map[string]struct {
		cert        *tls.Certificate
		wantCode    int
		wantBody    string
		wantPinMiss string
	}{
		"no client certificate": {wantCode: 401},
		"a CA of no tenant":     {cert: &p.other, wantCode: 403},
		"tenant a":              {cert: &p.a, wantCode: 200, wantBody: "a-1"},
		"tenant b":              {cert: &p.b, wantCode: 200, wantBody: "b-2"},
		"tenant a's CA, not its pinned certificate": {cert: &p.aMinted, wantCode: 403, wantPinMiss: "a-1"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := p.client(tc.cert).Post(p.url+"/vnest/echo-tenant", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || (tc.wantBody != "" && string(body) != tc.wantBody) {
				t.Errorf("HTTP %d %q, want %d %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			var got string
			select {
			case got = <-p.pinMisses:
			default:
			}
			if got != tc.wantPinMiss {
				t.Errorf("PinMismatch told of %q, want %q", got, tc.wantPinMiss)
			}
		})
	}
}

func TestProxyRefuses(t *testing.T) {
	p := startProxy(t)
	tests := map[string]struct {
		cert     *tls.Certificate
		path     string
		wantCode int
		wantMsg  string
	}{
		"no client certificate":  {path: "/containerLogs/default/web/app", wantCode: 401},
		"a CA of no tenant":      {cert: &p.other, path: "/containerLogs/default/web/app", wantCode: 403, wantMsg: "not signed by the CA of any tenant"},
		"unowned super pod":      {cert: &p.a, path: "/containerLogs/default/stolen/app", wantCode: 403, wantMsg: "is not one of this tenant's pods"},
		"an earlier pod's":       {cert: &p.a, path: "/containerLogs/default/stale/app", wantCode: 404, wantMsg: "earlier pod"},
		"not in the super":       {cert: &p.a, path: "/containerLogs/default/unsynced/app", wantCode: 404, wantMsg: "has no pod in the super cluster"},
		"not in the tenant":      {cert: &p.a, path: "/containerLogs/default/ghost/app", wantCode: 404},
		"other tenant's pod":     {cert: &p.b, path: "/containerLogs/default/web/app", wantCode: 404, wantMsg: "has no pod in the super cluster"},
		"wrong tenant namespace": {cert: &p.b, path: "/containerLogs/other/web/app", wantCode: 403},
		"wrong pod UID":          {cert: &p.a, path: "/portForward/default/web/uid-other", wantCode: 404},
		"node stats":             {cert: &p.a, path: "/stats/summary", wantCode: 404, wantMsg: "does not serve"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, err := p.client(tc.cert).Get(p.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantMsg) {
				t.Errorf("HTTP %d %q, want %d containing %q", resp.StatusCode, body, tc.wantCode, tc.wantMsg)
			}
		})
	}
	if reqs := p.super.requests(); len(reqs) > 0 {
		t.Errorf("refused requests reached the super apiserver: %s", reqs[0].URL)
	}
}

func TestProxyLogs(t *testing.T) {
	p := startProxy(t)
	resp, err := p.client(&p.a).Get(p.url + "/containerLogs/default/web/app?follow=true&tailLines=10&timestamps=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	// The first line must arrive while the super apiserver still holds the second: follow streams.
	if line, err := lines.ReadString('\n'); err != nil || line != "line 1\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(p.super.release)
	if line, err := lines.ReadString('\n'); err != nil || line != "line 2\n" {
		t.Fatalf("second line %q, %v", line, err)
	}
	got := p.onlySuperRequest(t, http.MethodGet, "/api/v1/namespaces/a-1-default/pods/web/log")
	if diff := cmp.Diff(url.Values{"container": {"app"}, "follow": {"true"}, "tailLines": {"10"}, "timestamps": {"true"}}, got.URL.Query()); diff != "" {
		t.Errorf("super query (-want +got):\n%s", diff)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer syncer-token" {
		t.Errorf("super request authorized with %q, want the syncer's token", a)
	}

	// An error of the super apiserver reaches the tenant as text kube-apiserver shows as is.
	resp, err = p.client(&p.a).Get(p.url + "/containerLogs/default/web/app?previous=true")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `previous terminated container "app" in pod "web" not found`) {
		t.Errorf("previous logs: HTTP %d %q", resp.StatusCode, body)
	}
}

// startExec sends an exec request (SPDY) for path with cert, and headers (lines ending in
// CRLF), on a connection of its own, closed at the end of the test; it returns the connection,
// its reader and the proxy's answer.
func (p *testProxy) startExec(t testing.TB, cert tls.Certificate, path, headers string) (*tls.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	return dialExec(t, strings.TrimPrefix(p.url, "https://"), cert, path, headers)
}

// dialExec is startExec to any server at addr (host:port), the fake super apiserver's say.
func dialExec(t testing.TB, addr string, cert tls.Certificate, path, headers string) (*tls.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "POST "+path+" HTTP/1.1\r\nHost: node\r\n"+
		"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"+headers+"\r\n")
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, rd, resp
}

func TestProxyExecUpgrade(t *testing.T) {
	p := startProxy(t)
	conn, rd, resp := p.startExec(t, p.a, "/exec/default/web/app?command=cat&command=-n&input=1&output=1&error=1",
		"Authorization: Bearer tenant-user\r\nImpersonate-User: system:admin\r\nImpersonate-Group: system:masters\r\nX-Remote-User: admin\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("HTTP %d %q, want 101", resp.StatusCode, body)
	}
	fmt.Fprint(conn, "ping\n")
	if echo, err := rd.ReadString('\n'); err != nil || echo != "ping\n" {
		t.Fatalf("echo %q, %v", echo, err)
	}

	got := p.onlySuperRequest(t, http.MethodPost, "/api/v1/namespaces/a-1-default/pods/web/exec")
	want := url.Values{"container": {"app"}, "command": {"cat", "-n"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}}
	if diff := cmp.Diff(want, got.URL.Query()); diff != "" {
		t.Errorf("super query (-want +got):\n%s", diff)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer syncer-token" {
		t.Errorf("super request authorized with %q, want the syncer's token", a)
	}
	for _, h := range []string{"Impersonate-User", "Impersonate-Group", "X-Remote-User"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("header %s: %s reached the super apiserver", h, v)
		}
	}
	if got.Header.Get("X-Stream-Protocol-Version") != "v4.channel.k8s.io" || !strings.EqualFold(got.Header.Get("Upgrade"), "SPDY/3.1") {
		t.Errorf("the stream protocol headers did not reach the super apiserver: %v", got.Header)
	}
}

// TestProxyStreamsEndWithTheProxy: when the proxy's context ends, its upgraded streams end too,
// on the caller's side and the super apiserver's, and so do its log streams; a hijacked
// connection is not the server's to close.
func TestProxyStreamsEndWithTheProxy(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	p := startProxyUntil(t, ctx)
	conn, rd, resp := p.startExec(t, p.a, "/exec/default/web/app?command=cat&input=1&output=1", "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("exec: HTTP %d, want 101", resp.StatusCode)
	}
	fmt.Fprint(conn, "ping\n")
	if echo, err := rd.ReadString('\n'); err != nil || echo != "ping\n" {
		t.Fatalf("echo %q, %v", echo, err)
	}
	logs, err := p.follow(t, &p.a, "web")
	if err != nil || logs.StatusCode != http.StatusOK {
		t.Fatalf("logs: %v, %v", logs, err)
	}

	stop()
	// startExec's deadline (10 s) ends the read if the proxy leaves the stream open.
	if got, err := rd.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("exec stream after the proxy stopped: read %q, %v; want it closed (EOF)", got, err)
	}
	// Cut, or ended cleanly when the handler saw its context end before the server closed the
	// connection; the client's timeout (10 s) ends the read if the stream goes on.
	if _, err := io.ReadAll(logs.Body); err != nil && strings.Contains(err.Error(), "Client.Timeout") {
		t.Errorf("log stream after the proxy stopped: %v, want it ended", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.super.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.super.open.Load(); n != 0 {
		t.Errorf("%d streams still open at the super apiserver after the proxy stopped", n)
	}
}

func TestProxyExecNeedsUpgrade(t *testing.T) {
	p := startProxy(t)
	resp, err := p.client(&p.a).Post(p.url+"/exec/default/web/app?command=ls&output=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("exec without an upgrade: HTTP %d, want 400", resp.StatusCode)
	}
}

// TestServerTimeouts: a connection that sends no request, half its headers, or nothing after a
// request is closed once the header or idle timeout has passed, and so is a stranger's whose
// request declares a body it never sends, once refused; anyone who reaches the listener could
// hold such connections open for ever.
func TestServerTimeouts(t *testing.T) {
	// The header timeout bounds the TLS handshake too, which tls.Dial must finish: a second
	// leaves room for a loaded machine.
	const timeout = time.Second
	p := startProxy(t, func(s *Server) { s.readHeaderTimeout, s.idleTimeout = timeout, timeout })
	for name, tc := range map[string]struct {
		sent     string
		stranger bool // without a client certificate: refused before the tenant is known
	}{
		"no request":                {sent: ""},
		"half-sent request headers": {sent: "GET /containerLogs/default/web/app HTTP/1.1\r\nHost: node\r\n"},
		"idle after a request":      {sent: "GET /stats/summary HTTP/1.1\r\nHost: node\r\n\r\n"},
		"a stranger's request whose body never comes": {
			sent: "POST /exec/default/web/app HTTP/1.1\r\nHost: node\r\nContent-Length: 10\r\n\r\n", stranger: true,
		},
		"a stranger's chunked request whose body never comes": {
			sent: "POST /exec/default/web/app HTTP/1.1\r\nHost: node\r\nTransfer-Encoding: chunked\r\n\r\n", stranger: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{p.a}}
			if tc.stranger {
				cfg.Certificates = nil
			}
			conn, err := tls.Dial("tcp", strings.TrimPrefix(p.url, "https://"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Generous: the proxy closes it after a second, however loaded the machine.
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprint(conn, tc.sent)
			got, err := io.ReadAll(conn) // whatever the proxy answers, then its close
			if err != nil {
				t.Fatalf("the connection was not closed by the proxy (timeouts of %v): %v; read %q", timeout, err, got)
			}
			if tc.stranger && !strings.HasPrefix(string(got), "HTTP/1.1 401 ") {
				t.Errorf("the stranger's request was answered %q, want 401", got)
			}
		})
	}
}

// follow starts a log stream of pod of cert's tenant: it is going once its first line has come;
// the fake super apiserver holds the rest until the end of the test. An answer other than 200 is
// returned as it is.
func (p *testProxy) follow(t *testing.T, cert *tls.Certificate, pod string) (*http.Response, error) {
	t.Helper()
	resp, err := p.client(cert).Get(p.url + "/containerLogs/default/" + pod + "/app?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err == nil && line != "line 1\n" {
		err = fmt.Errorf("first line %q", line)
	}
	return resp, err
}

// TestProxyTenantLimit: a tenant has at most Config.MaxRequestsPerTenant requests going through
// the proxy at once, streams included; the one past it is refused with 429 while another
// tenant's still go, and a stream that has ended gives its place back.
func TestProxyTenantLimit(t *testing.T) {
	var srv *Server
	p := startProxy(t, func(s *Server) { s.inFlight, srv = keylimit.New(2), s })
	follow := func(cert *tls.Certificate, pod string) (*http.Response, error) { return p.follow(t, cert, pod) }

	if resp, err := follow(&p.a, "web"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("tenant a's first stream: HTTP %d, %v", resp.StatusCode, err)
	}
	exec, _, resp := p.startExec(t, p.a, "/exec/default/web/app?command=cat&input=1&output=1", "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("tenant a's second stream, an exec: HTTP %d, want 101", resp.StatusCode)
	}
	resp, _ = follow(&p.a, "web")
	body, _ := io.ReadAll(resp.Body)
	const wantMsg = "tenant a-1 has 2 requests (logs, exec, attach, port-forward) going through the kubelet proxy, the most it may"
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), wantMsg) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("tenant a's third stream: HTTP %d %q, Retry-After %q; want 429 containing %q, with a Retry-After",
			resp.StatusCode, body, resp.Header.Get("Retry-After"), wantMsg)
	}
	if resp, err := follow(&p.b, "db"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("tenant b's stream while a is at its limit: HTTP %d, %v; want 200", resp.StatusCode, err)
	}
	if refused := testutil.ToFloat64(srv.metrics.refused.WithLabelValues(refusedTenantLimit)); refused != 1 {
		t.Errorf("metrics: %v requests refused at a tenant's bound, want 1", refused)
	}

	// The exec ends: its place is a's again, once the proxy has seen it end.
	_ = exec.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := follow(&p.a, "web")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("tenant a's stream after its exec ended: HTTP %d, want 200 (within 30s)", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProxyTotalLimit: all tenants together have at most Config.MaxRequests requests going
// through the proxy at once; the one past it is refused with 429 whichever tenant sends it, and
// a stream that has ended gives its place back, also to another tenant.
func TestProxyTotalLimit(t *testing.T) {
	var srv *Server
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2), ktesting.BufferLogs(true)))
	p := startProxyUntil(t, klog.NewContext(t.Context(), logger), func(s *Server) { s.total, srv = keylimit.New(2), s })
	follow := func(cert *tls.Certificate, pod string) *http.Response {
		t.Helper()
		resp, err := p.follow(t, cert, pod)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	first := follow(&p.a, "web")
	if first.StatusCode != http.StatusOK {
		t.Fatalf("tenant a's stream: HTTP %d, want 200", first.StatusCode)
	}
	if resp := follow(&p.b, "db"); resp.StatusCode != http.StatusOK {
		t.Fatalf("tenant b's first stream: HTTP %d, want 200", resp.StatusCode)
	}
	for range 2 {
		resp := follow(&p.b, "db")
		body, _ := io.ReadAll(resp.Body)
		const wantMsg = "the kubelet proxy has 2 requests (logs, exec, attach, port-forward) of all tenants going, the most it may"
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), wantMsg) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("tenant b's next stream, past the two going: HTTP %d %q, Retry-After %q; want 429 containing %q, with a Retry-After",
				resp.StatusCode, body, resp.Header.Get("Retry-After"), wantMsg)
		}
	}
	going, refused := testutil.ToFloat64(srv.metrics.going), testutil.ToFloat64(srv.metrics.refused.WithLabelValues(refusedProxyLimit))
	if going != 2 || refused != 2 || testutil.ToFloat64(srv.metrics.refused.WithLabelValues(refusedTenantLimit)) != 0 {
		t.Errorf("metrics: %v requests going, %v refused at the proxy's bound; want 2 and 2, none at a tenant's", going, refused)
	}
	// A tenant's users provoke a refusal per request: logged once a minute, the rest verbose.
	var infos, verbose int
	for _, e := range logger.GetSink().(ktesting.Underlier).GetBuffer().Data() {
		if strings.HasPrefix(e.Message, "Kubelet proxy refused a request: all tenants together") {
			if e.Verbosity == 0 {
				infos++
			} else {
				verbose++
			}
		}
	}
	if infos != 1 || verbose != 1 {
		t.Errorf("the 2 refusals were logged %d times at Info and %d verbose, want 1 and 1", infos, verbose)
	}

	// a's stream ends: its place is b's, once the proxy has seen it end.
	_ = first.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := follow(&p.b, "db")
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("tenant b's stream after a's ended: HTTP %d, want 200 (within 30s)", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
