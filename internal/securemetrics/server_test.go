package securemetrics_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vnest-dev/vnest/internal/securemetrics"
	"github.com/vnest-dev/vnest/internal/testreviewer"
)

// TestServerTimeouts: the metrics address, which anyone who reaches a pod IP may open
// connections to, closes a connection that sends no request, half its headers, nothing after a
// request, or a request whose body never comes (whatever its path: the ServeMux's redirects
// too), once its timeouts have passed: else each would hold a goroutine and a socket for ever.
func TestServerTimeouts(t *testing.T) {
	// The read timeout bounds the TLS handshake too, which tls.Dial must finish: a second leaves
	// room for a loaded machine.
	const timeout = time.Second
	super := testreviewer.Start(t, nil)
	for _, secure := range []bool{false, true} {
		srv, err := securemetrics.NewServer(securemetrics.Options{BindAddress: "127.0.0.1:0", Secure: secure}, super.Config())
		if err != nil {
			t.Fatal(err)
		}
		srv.SetTimeouts(timeout, timeout)
		addr := testreviewer.Listen(t, srv)
		for name, tc := range map[string]struct {
			sent   string
			answer bool // a request whole enough to be answered: 401 when secure, no token
		}{
			"no request":                          {sent: ""},
			"half-sent request headers":           {sent: "GET /metrics HTTP/1.1\r\nHost: m\r\n"},
			"idle after a request":                {sent: "GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n", answer: true},
			"a body that never comes":             {sent: "POST /metrics HTTP/1.1\r\nHost: m\r\nContent-Length: 10\r\n\r\n", answer: true},
			"a chunked body that never comes":     {sent: "POST /metrics HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n", answer: true},
			"a body that never comes, redirected": {sent: "POST //metrics HTTP/1.1\r\nHost: m\r\nContent-Length: 10\r\n\r\n", answer: true},
		} {
			t.Run(fmt.Sprintf("secure %v, %s", secure, name), func(t *testing.T) {
				t.Parallel()
				var conn net.Conn
				var err error
				if secure {
					conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
				} else {
					conn, err = net.Dial("tcp", addr)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				// Generous: the server closes it after a second, however loaded the machine.
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprint(conn, tc.sent)
				got, err := io.ReadAll(conn) // whatever the server answers, then its close
				if err != nil {
					t.Fatalf("the connection was not closed by the server (timeouts of %v): %v; read %q", timeout, err, got)
				}
				if secure && tc.answer && !strings.HasPrefix(string(got), "HTTP/1.1 401 ") {
					t.Errorf("answered %q, want 401: no token", got)
				}
			})
		}
	}
}

// TestCertDirWithoutCertificate: a --metrics-cert-dir without its certificate fails the start,
// rather than serving one signed by itself that no client trusts.
func TestCertDirWithoutCertificate(t *testing.T) {
	srv, err := securemetrics.NewServer(securemetrics.Options{BindAddress: "127.0.0.1:0", Secure: true, CertDir: t.TempDir()}, testreviewer.Start(t, nil).Config())
	if err != nil {
		t.Fatal(err)
	}
	if addr, err := securemetrics.Start(t.Context(), srv); err == nil || !strings.Contains(err.Error(), "tls.crt") {
		t.Errorf("Start with an empty --metrics-cert-dir = %q, %v; want an error about its tls.crt", addr, err)
	}
}

// TestServerLogsHandshakesVerbose: a TLS handshake that fails, which anyone who reaches the
// secure address causes at will (plain HTTP to it, a port scan), is logged at V(4), not as a
// line on stderr each.
func TestServerLogsHandshakesVerbose(t *testing.T) {
	logger, addr := startSecure(t, testreviewer.Start(t, nil).Config())
	if code, body := testreviewer.Get(t, http.DefaultClient, "http://"+addr+"/metrics", ""); code != http.StatusBadRequest {
		t.Errorf("GET /metrics over plain HTTP = %d %q, want 400", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); len(logged(logger, 4)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the failed handshake was not logged in 30 s")
		}
	}
	if lines := logged(logger, 4); len(lines) != 1 || !strings.Contains(lines[0], "INFO Metrics connection's TLS handshake failed") || len(logged(logger, 0)) != 0 {
		t.Errorf("logged:\n%s\nwant the failed handshake at V(4) alone", strings.Join(lines, "\n"))
	}
}
