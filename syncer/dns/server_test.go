package dns

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

// TestServer asks a server on 127.0.0.1 over UDP and TCP: the tenant pod at 127.0.0.1 gets its
// names and, outside its domain, an upstream's answer; 127.0.0.2, no tenant pod, is refused
// after the wait; 127.0.0.3 becomes a tenant pod's address during the wait and is answered.
func TestServer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	upstream := startUpstream(t)
	var lateKnown atomic.Bool
	const wait = 400 * time.Millisecond
	srv := New(Config{
		Tenant: func(ip netip.Addr) (*Tenant, bool) {
			switch {
			case ip == netip.MustParseAddr("127.0.0.1"):
				return testTenant(), true
			case ip == netip.MustParseAddr("127.0.0.3") && lateKnown.Load():
				return testTenant(), true
			}
			return nil, false
		},
		Upstreams:         []string{"127.0.0.1:1", upstream}, // the first does not answer
		ForwardTimeout:    500 * time.Millisecond,
		UnknownSourceWait: wait,
	})
	addr, err := srv.Start(klog.NewContext(t.Context(), klog.FromContext(ctx)), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ask := func(network, from, name string) *dns.Msg {
		t.Helper()
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		if network == "udp" {
			c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
		} else {
			c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		resp, _, err := c.Exchange(m, addr.String())
		if err != nil {
			t.Fatalf("%s %s from %s: %v", network, name, from, err)
		}
		return resp
	}
	for _, network := range []string{"udp", "tcp"} {
		resp := ask(network, "127.0.0.1", "web.default.svc.cluster.local.")
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "10.96.0.10" {
			t.Errorf("%s: web.default.svc.cluster.local: %v", network, resp)
		}
		if resp := ask(network, "127.0.0.1", "nope.default.svc.cluster.local."); resp.Rcode != dns.RcodeNameError {
			t.Errorf("%s: nope.default.svc.cluster.local: rcode %s, want NXDOMAIN", network, dns.RcodeToString[resp.Rcode])
		}
		resp = ask(network, "127.0.0.1", "example.com.")
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
			t.Errorf("%s: example.com, forwarded: %v", network, resp)
		}
		for _, name := range []string{"web.default.svc.cluster.local.", "example.com."} {
			start := time.Now()
			if resp := ask(network, "127.0.0.2", name); resp.Rcode != dns.RcodeRefused || len(resp.Answer) != 0 {
				t.Errorf("%s: %s from a source that is no tenant pod: %v, want REFUSED", network, name, resp)
			}
			if took := time.Since(start); took < wait {
				t.Errorf("%s: %s from a source that is no tenant pod refused after %v, want after the %v wait", network, name, took, wait)
			}
		}
		// A pod whose IP the syncer learns only after its first query (kubelets report the
		// IP after the containers started).
		lateKnown.Store(false)
		time.AfterFunc(150*time.Millisecond, func() { lateKnown.Store(true) })
		if resp := ask(network, "127.0.0.3", "web.default.svc.cluster.local."); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("%s: web.default.svc.cluster.local from a pod known 150 ms later: %v, want its answer", network, resp)
		}
	}
}

// startUpstream serves example.com A 192.0.2.80 on UDP and TCP of one 127.0.0.1 port.
func startUpstream(t *testing.T) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "example.com." {
			rr, _ := dns.NewRR("example.com. 60 IN A 192.0.2.80")
			m.Answer = []dns.RR{rr}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return pc.LocalAddr().String()
}
