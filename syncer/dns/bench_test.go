package dns

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vnest-dev/vnest/internal/testmem"
)

// BenchmarkForwardedQueryBytes measures what one more query a tenant's pods have waiting at the
// upstreams (a unit of maxForwarding) costs the syncer: the heap it holds, the goroutines and
// their stacks. n queries for names outside the tenant's domain, each of its own name, go over
// UDP from the tenant pod's address to the server, which forwards each to an upstream that
// answers none until all n have come; the live heap (after two forced collections), the stacks
// in use and the goroutines are read then, and once before the first is sent.
//
// The queries are sent from one socket, which holds nothing per query, but the upstream lives in
// this process too and keeps each query it holds: the same n queries are first sent straight to
// it, the server bypassed, and measured alike ("direct-"). What the forwarded ones cost beyond
// that is the server's: bytes/query (heap), stack-bytes/query and goroutines/query.
// docs/benchmarks.md, session 37.
//
//	go test ./syncer/dns/ -run '^$' -bench QueryBytes -benchtime 1x
func BenchmarkForwardedQueryBytes(b *testing.B) {
	for _, n := range []int{64, 256} {
		b.Run(fmt.Sprintf("queries=%d", n), func(b *testing.B) {
			for range b.N {
				upstream := startSilentUpstream(b)
				tn := testTenant()
				srv := New(Config{
					Tenant:            func(ip netip.Addr) (*Tenant, bool) { return tn, ip == netip.MustParseAddr("127.0.0.1") },
					Upstreams:         []string{upstream.addr},
					ForwardTimeout:    time.Minute, // the upstream answers once they are measured
					UnknownSourceWait: -1,
				})
				addr, err := srv.Start(b.Context(), "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				// The upstream counts the queries by name: each round asks names of its own, so
				// that each pays for its own in the count.
				held := func(to, round string, n int) testmem.Usage {
					return queriesUsage(b, to, round, n, upstream.holding, upstream.answer)
				}
				// The first query of each way pays for what is made once: not what a query costs.
				held(upstream.addr, "warm-direct", 1)
				held(addr.String(), "warm", 1)
				direct, forwarded := held(upstream.addr, "direct", n), held(addr.String(), "forwarded", n)
				server := forwarded.Sub(direct)
				b.ReportMetric(float64(server.Heap)/float64(n), "bytes/query")
				b.ReportMetric(float64(server.Stack)/float64(n), "stack-bytes/query")
				b.ReportMetric(float64(server.Goroutines)/float64(n), "goroutines/query")
				b.ReportMetric(float64(direct.Heap)/float64(n), "direct-bytes/query")
			}
		})
	}
}

// BenchmarkWaitingQueryBytes measures what one more query waiting for its source to become a
// tenant pod's (a unit of maxWaiting, which is the whole server's, not a tenant's) costs the
// syncer, as BenchmarkForwardedQueryBytes does: n queries from an address no tenant pod has yet
// wait in the server (Config.UnknownSourceWait) until the address becomes one's, after they are
// measured. Nothing else in the process holds anything per query. docs/benchmarks.md, session 37.
//
//	go test ./syncer/dns/ -run '^$' -bench QueryBytes -benchtime 1x
func BenchmarkWaitingQueryBytes(b *testing.B) {
	for _, n := range []int{64, 256} {
		b.Run(fmt.Sprintf("queries=%d", n), func(b *testing.B) {
			for range b.N {
				var known atomic.Bool
				tn := testTenant()
				srv := New(Config{
					Tenant: func(netip.Addr) (*Tenant, bool) { return tn, known.Load() },
					// None: a query whose source became known is answered SERVFAIL at once.
					Upstreams:         nil,
					UnknownSourceWait: time.Minute, // the source becomes known once they are measured
				})
				addr, err := srv.Start(b.Context(), "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				waiting := func() int { return len(srv.waiting) }
				held := func(round string, n int) testmem.Usage {
					return queriesUsage(b, addr.String(), round, n, waiting, func() { known.Store(true) })
				}
				held("warm", 1) // what is made once
				known.Store(false)
				u := held("waiting", n)
				b.ReportMetric(float64(u.Heap)/float64(n), "bytes/query")
				b.ReportMetric(float64(u.Stack)/float64(n), "stack-bytes/query")
				b.ReportMetric(float64(u.Goroutines)/float64(n), "goroutines/query")
			}
		})
	}
}

// queriesUsage sends n queries, each of its own name outside the tenant's domain (q<i>.<round>.example.),
// over UDP from 127.0.0.1 to addr, and returns what they added to the process once held reports
// all n held. Then release ends them, and it waits until held reports none and their goroutines
// have ended, so that nothing of them is left to the next reading.
func queriesUsage(b *testing.B, addr, round string, n int, held func() int, release func()) testmem.Usage {
	b.Helper()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	before := testmem.Read()
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("q%d.%s.example.", i, round), dns.TypeA)
		out, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.WriteTo(out, to); err != nil {
			b.Fatal(err)
		}
		// In steps, so that no socket's buffer overflows and drops a query.
		if (i+1)%16 == 0 || i+1 == n {
			waitHeld(b, held, i+1)
		}
	}
	after := testmem.Read()
	release()
	waitHeld(b, held, 0)
	if !testmem.WaitGoroutines(before.Goroutines, 10*time.Second) {
		b.Fatalf("%d goroutines 10s after the queries were let go, %d before they were sent", runtime.NumGoroutine(), before.Goroutines)
	}
	return after.Sub(before)
}

// waitHeld waits until held reports n queries held. A query that is not held when measured must
// fail the benchmark, not make it cheap.
func waitHeld(b *testing.B, held func() int, n int) {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); held() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d queries held, want %d", held(), n)
		}
	}
}
