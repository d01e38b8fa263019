package syncer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/vnest-dev/vnest/internal/testreviewer"
)

// TestMetricsServerPlain: without --metrics-secure the metrics address is plain HTTP and open,
// as `vnest up` runs it on loopback: /metrics and /healthz always, /debug/pprof/ only with
// --profiling.
func TestMetricsServerPlain(t *testing.T) {
	for _, profiling := range []bool{false, true} {
		o := NewOptions()
		o.MetricsBindAddress, o.Profiling = "127.0.0.1:0", profiling
		url := "http://" + startMetrics(t, o, nil)
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
			if code, body := testreviewer.Get(t, http.DefaultClient, url+path, ""); code != want {
				t.Errorf("profiling %v: GET %s = %d %q, want %d", profiling, path, code, body, want)
			}
		}
	}
}

// TestMetricsServerSecure: with --metrics-secure the metrics address serves HTTPS only, and a
// request goes through only with a bearer token the super cluster's TokenReview authenticates
// and whose user a SubjectAccessReview allows to get the path: no token and a token the
// TokenReview rejects are 401, a tenant's service account 403, Prometheus gets /metrics (the
// syncer's own series) but not the profiles, which an admin gets.
func TestMetricsServerSecure(t *testing.T) {
	m := newMetrics(ctrlmetrics.Registry) // as New registers them
	m.serve("secure-tenant")
	m.queueDepth("secure-tenant", kindPod, 3)
	super := startReviewer(t)
	o := NewOptions()
	o.MetricsBindAddress, o.MetricsSecure, o.Profiling = "127.0.0.1:0", true, true
	addr := startMetrics(t, o, super.Config())

	for _, tc := range []struct {
		path, token string
		want        int
		wantBody    string
	}{
		{path: "/metrics", want: http.StatusUnauthorized},
		{path: "/metrics", token: "forged", want: http.StatusUnauthorized, wantBody: "Unauthorized"},
		{path: "/metrics", token: "tenant-pod", want: http.StatusForbidden},
		{path: "/healthz", token: "tenant-pod", want: http.StatusForbidden},
		{path: "/debug/pprof/heap", token: "tenant-pod", want: http.StatusForbidden},
		{path: "/metrics", token: "prometheus", want: http.StatusOK, wantBody: `vnest_syncer_queue_depth{kind="Pod",tenant="secure-tenant"} 3`},
		{path: "/debug/pprof/heap", token: "prometheus", want: http.StatusForbidden},
		{path: "/debug/pprof/heap?debug=1", token: "admin", want: http.StatusOK, wantBody: "heap profile"},
	} {
		code, body := testreviewer.Get(t, testreviewer.SelfSignedClient, "https://"+addr+tc.path, tc.token)
		if code != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("GET %s with token %q = %d %.80q, want %d with %q", tc.path, tc.token, code, body, tc.want, tc.wantBody)
		}
	}
	if code, body := testreviewer.Get(t, http.DefaultClient, "http://"+addr+"/metrics", "prometheus"); code != http.StatusBadRequest {
		t.Errorf("GET /metrics over plain HTTP = %d %q, want %d: HTTPS only", code, body, http.StatusBadRequest)
	}
}

// TestMetricsCertDir: the secure metrics address serves the certificate of --metrics-cert-dir,
// which a client that trusts it alone verifies.
func TestMetricsCertDir(t *testing.T) {
	dir := t.TempDir()
	cert, key, err := certutil.GenerateSelfSignedCertKey("vnest-syncer", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": cert, "tls.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o := NewOptions()
	o.MetricsBindAddress, o.MetricsSecure, o.MetricsCertDir = "127.0.0.1:0", true, dir
	addr := startMetrics(t, o, startReviewer(t).Config())
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if code, body := testreviewer.Get(t, client, "https://"+addr+"/metrics", "prometheus"); code != http.StatusOK {
		t.Errorf("GET /metrics verifying the certificate of --metrics-cert-dir = %d %q, want 200", code, body)
	}
}

// TestMetricsAddressTaken: a secure metrics address that is taken fails the start, although
// its certificate is made before it listens.
func TestMetricsAddressTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	o := NewOptions()
	o.MetricsBindAddress, o.MetricsSecure = l.Addr().String(), true
	s := &Syncer{opts: &completedOptions{Options: o, super: startReviewer(t).Config()}}
	if err := s.serveMetrics(t.Context()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("serveMetrics on a taken address = %v, want %v", err, syscall.EADDRINUSE)
	}
}

// TestHealthProbeOpen: the health probe address answers /healthz over plain HTTP without a
// token, as the kubelet asks, and serves nothing else.
func TestHealthProbeOpen(t *testing.T) {
	addr, err := serveHealth(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/metrics": http.StatusNotFound, "/debug/pprof/": http.StatusNotFound} {
		if code, body := testreviewer.Get(t, http.DefaultClient, "http://"+addr.String()+path, ""); code != want {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}
	if addr, err := serveHealth(t.Context(), "0"); addr != nil || err != nil {
		t.Errorf("serveHealth(0) = %v, %v; want it off", addr, err)
	}
}

// TestHealthProbeTimeouts: the health probe address, open on the pod IP to tenant pods, closes a
// connection idle after a request, and one whose request body never comes, once its timeouts
// have passed: anyone could hold such connections, each a goroutine and a file descriptor of
// the syncer, for ever.
func TestHealthProbeTimeouts(t *testing.T) {
	const timeout = 100 * time.Millisecond
	was := healthTimeouts
	healthTimeouts = struct{ read, idle time.Duration }{timeout, timeout}
	t.Cleanup(func() { healthTimeouts = was })
	addr, err := serveHealth(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for name, sent := range map[string]string{
		"idle after a request":      "GET /healthz HTTP/1.1\r\nHost: syncer\r\n\r\n",
		"a body that never comes":   "POST /healthz HTTP/1.1\r\nHost: syncer\r\nContent-Length: 10\r\n\r\n",
		"half-sent request headers": "GET /healthz HTTP/1.1\r\nHost: syncer\r\n",
		"no request":                "",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Generous: the server closes it after 100 ms, however loaded the machine.
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprint(conn, sent)
			if got, err := io.ReadAll(conn); err != nil { // whatever the server answers, then its close
				t.Fatalf("the connection was not closed by the server (timeouts of %v): %v; read %q", timeout, err, got)
			}
		})
	}
}

// TestDeploymentSecuresMetrics: the syncer's Deployment (manifests/syncer) turns secure metrics
// on, and its liveness probe asks /healthz of the open health probe address, not of the
// metrics one, which would answer 401.
func TestDeploymentSecuresMetrics(t *testing.T) {
	var d appsv1.Deployment
	readManifest(t, "../manifests/syncer/deployment.yaml", &d)
	c := d.Spec.Template.Spec.Containers[0]
	o := NewOptions()
	fs := pflag.NewFlagSet("syncer", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(c.Args[1:]); err != nil {
		t.Fatal(err)
	}
	if !o.MetricsSecure || addressOff(o.MetricsBindAddress) {
		t.Errorf("the Deployment serves metrics on %q with --metrics-secure=%v; want them secure", o.MetricsBindAddress, o.MetricsSecure)
	}
	probe := c.LivenessProbe.HTTPGet
	port := probe.Port.IntVal
	for _, p := range c.Ports {
		if probe.Port.Type == intstr.String && p.Name == probe.Port.StrVal {
			port = p.ContainerPort
		}
	}
	_, health, _ := net.SplitHostPort(o.HealthProbeBindAddress)
	if health != strconv.Itoa(int(port)) || probe.Path != "/healthz" || probe.Scheme != "" && probe.Scheme != corev1.URISchemeHTTP {
		t.Errorf("the liveness probe asks %s at port %s (%d), scheme %q; want /healthz of --health-probe-bind-address=%q over HTTP",
			probe.Path, probe.Port.String(), port, probe.Scheme, o.HealthProbeBindAddress)
	}
}

// startMetrics runs newMetricsServer(o, super) until the test ends and returns the address it
// listens on.
func startMetrics(t *testing.T, o *Options, super *rest.Config) string {
	t.Helper()
	srv, err := newMetricsServer(o, super)
	if err != nil {
		t.Fatal(err)
	}
	return testreviewer.Listen(t, srv)
}

// allowed are the non-resource paths each user may get of the reviewer, as RBAC would decide
// them: Prometheus bound to vnest-syncer-metrics-reader, an admin to cluster-admin.
var allowed = map[string][]string{
	"prometheus": {"/metrics"},
	"admin":      {"/metrics", "/healthz", "/debug/pprof/heap"},
}

// startReviewer runs a reviewer of allowed until the test ends.
func startReviewer(t *testing.T) *testreviewer.Reviewer { return testreviewer.Start(t, allowed) }
