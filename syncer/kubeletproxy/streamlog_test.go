package kubeletproxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
)

// lockedBuffer is a bytes.Buffer for loggers written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func textLogger(out *lockedBuffer, verbosity int) klog.Logger {
	return textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(out), textlogger.Verbosity(verbosity)))
}

// TestStreamEndLogger: an error that says the other end of a stream went away is logged at V(2),
// as Info, with the caller's line; any other error stays an Error.
func TestStreamEndLogger(t *testing.T) {
	pipe := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for name, tc := range map[string]struct {
		err       error
		verbosity int
		want      string // the line's start: severity; "" for no line
	}{
		"broken pipe":                {err: pipe, verbosity: 2, want: "I"},
		"connection reset":           {err: reset, verbosity: 2, want: "I"},
		"closed connection, wrapped": {err: errors.Join(errors.New("copy"), net.ErrClosed), verbosity: 2, want: "I"},
		"broken pipe, not verbose":   {err: pipe, verbosity: 1},
		"another error":              {err: errors.New("tls: bad record MAC"), verbosity: 0, want: "E"},
	} {
		t.Run(name, func(t *testing.T) {
			var out lockedBuffer
			logger := streamEndLogger(textLogger(&out, tc.verbosity)).WithValues("tenant", "a-1")
			logger.Error(tc.err, "Error proxying data from backend to client")
			got := out.String()
			if tc.want == "" {
				if got != "" {
					t.Errorf("logged %q, want nothing", got)
				}
				return
			}
			if !strings.HasPrefix(got, tc.want) || !strings.Contains(got, "streamlog_test.go:") ||
				!strings.Contains(got, `"Error proxying data from backend to client"`) || !strings.Contains(got, `tenant="a-1"`) {
				t.Errorf("logged %q, want a line of severity %s from streamlog_test.go with the message and the tenant", got, tc.want)
			}
		})
	}
}

// TestProxyStreamResetIsNoError: an exec stream whose super apiserver end goes away with a
// reset ends the client's stream and is logged at V(2), not as an Error (upstream's
// UpgradeAwareHandler logs it as one).
func TestProxyStreamResetIsNoError(t *testing.T) {
	p, out, conn, rd := startLoggedExec(t, "command=reset&input=1&output=1")
	if _, err := conn.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	// Ended by the proxy once it logged the copy's failure; startExec's deadline (10 s) ends it
	// otherwise.
	if got, err := rd.ReadString('\n'); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("exec stream after the super end's reset: read %q, %v; want it ended", got, err)
	}
	checkStreamEndLogged(t, p, out)
}

// TestProxyClientResetIsNoError: an exec stream whose client goes away with a reset while the
// super apiserver writes (kubectl killed during a command's output) is logged at V(2) too.
func TestProxyClientResetIsNoError(t *testing.T) {
	p, out, conn, rd := startLoggedExec(t, "command=yes&output=1")
	if line, err := rd.ReadString('\n'); err != nil || line != "y\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if tc, ok := conn.NetConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
		_ = tc.Close()
	}
	checkStreamEndLogged(t, p, out)
}

// startLoggedExec starts a proxy that logs into out at V(2) and an exec stream through it with
// the exec query query.
func startLoggedExec(t *testing.T, query string) (p *testProxy, out *lockedBuffer, conn *tls.Conn, rd *bufio.Reader) {
	t.Helper()
	out = &lockedBuffer{}
	p = startProxyUntil(t, klog.NewContext(t.Context(), textLogger(out, 2)))
	conn, rd, resp := p.startExec(t, p.a, "/exec/default/web/app?"+query, "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("exec: HTTP %d, want 101", resp.StatusCode)
	}
	return p, out, conn, rd
}

// checkStreamEndLogged waits for the end of p's streams and checks that out, the proxy's log at
// V(2), tells of a failed copy, and not as an Error.
func checkStreamEndLogged(t *testing.T, p *testProxy, out *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.super.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for !strings.Contains(out.String(), "Error proxying data") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	logged := out.String()
	for line := range strings.Lines(logged) {
		if strings.HasPrefix(line, "E") {
			t.Errorf("logged as an error: %s", line)
		}
	}
	if !strings.Contains(logged, "Error proxying data") {
		t.Errorf("the stream's end was not logged at V(2); the log:\n%s", logged)
	}
}
