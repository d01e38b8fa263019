package kubeletproxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vnest-dev/vnest/internal/testmem"
)

// BenchmarkProxiedStreamBytes measures what one more stream a tenant has going through the proxy
// (a unit of DefaultMaxRequestsPerTenant) costs the syncer: the heap it holds, the goroutines and
// their stacks. n streams of tenant a are opened at once, each against the fake super apiserver,
// which holds it open: an exec (an upgraded connection, which UpgradeAwareHandler copies both
// ways) that has echoed a line, and a `logs -f` that has sent its first line. The live heap
// (after two forced collections), the stacks in use and the goroutines are read once all n are
// open at the fake super apiserver, and once before any is.
//
// The client side of the streams and the fake super apiserver live in this process too, so the
// same n streams are first opened straight to the fake super apiserver, the proxy bypassed, and
// measured alike ("direct-"): the client's and the upstream's share. What the streams through
// the proxy cost beyond it is the proxy's: bytes/stream (heap), stack-bytes/stream and
// goroutines/stream. Every connection here is HTTP/1.1, one per stream, as an upgraded one
// always is; a super apiserver serves log streams over HTTP/2 too, where they share connections,
// so the logs figure counts a connection to it per stream that a real one may not need.
// docs/benchmarks.md, session 37.
//
//	go test ./syncer/kubeletproxy/ -run '^$' -bench ProxiedStreamBytes -benchtime 1x
func BenchmarkProxiedStreamBytes(b *testing.B) {
	for _, kind := range []struct {
		name string
		open func(tb testing.TB, p *testProxy, direct bool) io.Closer
	}{
		{"exec", openExecStream},
		{"logs", openLogStream},
	} {
		for _, n := range []int{64, 256} {
			b.Run(fmt.Sprintf("%s/streams=%d", kind.name, n), func(b *testing.B) {
				for range b.N {
					p := startProxy(b)
					// The first stream of each way pays for what is made once (TLS session
					// state, the proxy's transports): not what a stream costs.
					for _, direct := range []bool{true, false} {
						if err := kind.open(b, p, direct).Close(); err != nil {
							b.Fatal(err)
						}
						waitStreams(b, p.super, 0)
					}
					open := func(direct bool) testmem.Usage {
						return streamsUsage(b, p, n, func() io.Closer { return kind.open(b, p, direct) })
					}
					direct, proxied := open(true), open(false)
					proxy := proxied.Sub(direct)
					b.ReportMetric(float64(proxy.Heap)/float64(n), "bytes/stream")
					b.ReportMetric(float64(proxy.Stack)/float64(n), "stack-bytes/stream")
					b.ReportMetric(float64(proxy.Goroutines)/float64(n), "goroutines/stream")
					b.ReportMetric(float64(direct.Heap)/float64(n), "direct-bytes/stream")
					b.ReportMetric(float64(direct.Goroutines)/float64(n), "direct-goroutines/stream")
				}
			})
		}
	}
}

// streamsUsage opens n streams with open, and returns what they added to the process once the
// fake super apiserver holds all n. It closes them before it returns, and waits until the fake
// super apiserver holds none and their goroutines have ended, so that nothing of them is left
// to the next reading.
func streamsUsage(b *testing.B, p *testProxy, n int, open func() io.Closer) testmem.Usage {
	b.Helper()
	before := testmem.Read()
	streams := make([]io.Closer, 0, n)
	for range n {
		streams = append(streams, open())
	}
	// A stream that is not open end to end must fail the benchmark, not make it cheap.
	waitStreams(b, p.super, n)
	after := testmem.Read()
	for _, s := range streams {
		_ = s.Close()
	}
	waitStreams(b, p.super, 0)
	if !testmem.WaitGoroutines(before.Goroutines, 10*time.Second) {
		b.Fatalf("%d goroutines 10s after the streams were closed, %d before they were opened", runtime.NumGoroutine(), before.Goroutines)
	}
	return after.Sub(before)
}

// waitStreams waits until the fake super apiserver holds n streams open.
func waitStreams(b *testing.B, f *fakeSuper, n int) {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.open.Load() != int64(n); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the fake super apiserver holds %d streams open, want %d", f.open.Load(), n)
		}
	}
}

// openExecStream opens an exec of tenant a's pod web through the proxy, or straight to the fake
// super apiserver, and returns it once a line has gone to the upstream and come back.
func openExecStream(tb testing.TB, p *testProxy, direct bool) io.Closer {
	tb.Helper()
	addr, path := strings.TrimPrefix(p.url, "https://"), "/exec/default/web/app?command=sh&input=1&output=1&tty=1"
	if direct {
		addr, path = p.super.Listener.Addr().String(), "/api/v1/namespaces/a-1-default/pods/web/exec?command=sh&container=app&stdin=true&stdout=true&tty=true"
	}
	conn, rd, resp := dialExec(tb, addr, p.a, path, "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("exec (direct %v): HTTP %d %q, want 101", direct, resp.StatusCode, body)
	}
	fmt.Fprint(conn, "ping\n")
	if echo, err := rd.ReadString('\n'); err != nil || echo != "ping\n" {
		tb.Fatalf("exec (direct %v): echo %q, %v", direct, echo, err)
	}
	return conn
}

// openLogStream follows the log of tenant a's pod web through the proxy, or straight from the
// fake super apiserver, on a connection of its own, and returns it once the first line has come.
func openLogStream(tb testing.TB, p *testProxy, direct bool) io.Closer {
	tb.Helper()
	u := p.url + "/containerLogs/default/web/app?follow=true"
	if direct {
		u = p.super.URL + "/api/v1/namespaces/a-1-default/pods/web/log?container=app&follow=true"
	}
	// No client timeout: it would end the stream.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{p.a}}}}
	resp, err := c.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	line := make([]byte, len("line 1\n"))
	if _, err := io.ReadFull(resp.Body, line); resp.StatusCode != http.StatusOK || err != nil || string(line) != "line 1\n" {
		tb.Fatalf("logs (direct %v): HTTP %d, first line %q, %v", direct, resp.StatusCode, line, err)
	}
	return resp.Body
}
