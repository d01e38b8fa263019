package dns

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/vnest-dev/vnest/internal/keylimit"
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
		return exchangeFrom(t, addr, network, from, name, dns.TypeA)
	}
	for _, network := range []string{"udp", "tcp"} {
		resp := ask(network, "127.0.0.1", "web.default.svc.cluster.local.")
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "10.96.0.10" {
			t.Errorf("%s: web.default.svc.cluster.local: %v", network, resp)
		}
		if resp := ask(network, "127.0.0.1", "nope.default.svc.cluster.local."); resp.Rcode != dns.RcodeNameError {
			t.Errorf("%s: nope.default.svc.cluster.local: rcode %s, want NXDOMAIN", network, dns.RcodeToString[resp.Rcode])
		}
		// A namespace's name has no records; a missing namespace's is NXDOMAIN, as in CoreDNS.
		if resp := ask(network, "127.0.0.1", "default.svc.cluster.local."); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
			t.Errorf("%s: default.svc.cluster.local: %v, want NOERROR without records", network, resp)
		}
		if resp := ask(network, "127.0.0.1", "nons.svc.cluster.local."); resp.Rcode != dns.RcodeNameError {
			t.Errorf("%s: nons.svc.cluster.local (no such namespace): rcode %s, want NXDOMAIN", network, dns.RcodeToString[resp.Rcode])
		}
		resp = ask(network, "127.0.0.1", "example.com.")
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
			t.Errorf("%s: example.com, forwarded: %v", network, resp)
		}
		// An ExternalName Service: its CNAME and, as CoreDNS gives, the target's address, which
		// a stub resolver does not look up itself.
		resp = ask(network, "127.0.0.1", "ext.default.svc.cluster.local.")
		if a, ok := lastA(resp); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 2 || !ok || a != "192.0.2.80" {
			t.Errorf("%s: ext.default.svc.cluster.local (ExternalName example.com): %v, want its CNAME and example.com's A", network, resp)
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

// TestServerStarting: while the caller is starting (Config.Starting), a query from a source
// that is no tenant pod may come from one it does not know yet: SERVFAIL after the wait, which
// resolvers retry, with no records; once it has started, REFUSED. Starting is asked once the
// wait is over: a start that ends during the wait refuses.
func TestServerStarting(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	var starting atomic.Bool
	const wait = 200 * time.Millisecond
	srv := New(Config{
		Tenant:            func(netip.Addr) (*Tenant, bool) { return nil, false },
		Upstreams:         []string{startUpstream(t)},
		UnknownSourceWait: wait,
		Starting:          starting.Load,
	})
	addr, err := srv.Start(klog.NewContext(t.Context(), klog.FromContext(ctx)), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			starting, endsInWait bool
			want                 int
		}{
			{starting: true, want: dns.RcodeServerFailure},
			{starting: true, endsInWait: true, want: dns.RcodeRefused},
			{starting: false, want: dns.RcodeRefused},
		} {
			starting.Store(tc.starting)
			if tc.endsInWait {
				time.AfterFunc(wait/2, func() { starting.Store(false) })
			}
			for _, name := range []string{"web.default.svc.cluster.local.", "example.com."} {
				start := time.Now()
				resp := exchangeFrom(t, addr, network, "127.0.0.2", name, dns.TypeA)
				if resp.Rcode != tc.want || len(resp.Answer) != 0 || len(resp.Ns) != 0 {
					t.Errorf("%s: %s from an unknown source (starting %v, ending in the wait %v): %v, want %s without records",
						network, name, tc.starting, tc.endsInWait, resp, dns.RcodeToString[tc.want])
				}
				if took := time.Since(start); took < wait {
					t.Errorf("%s: %s from an unknown source answered after %v, want after the %v wait", network, name, took, wait)
				}
			}
		}
	}
}

// exchangeFrom asks the server at addr over network ("udp" or "tcp") for name's records of
// type qtype, from local address from.
func exchangeFrom(t *testing.T, addr net.Addr, network, from, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	if network == "udp" {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
	} else {
		c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	resp, _, err := c.Exchange(m, addr.String())
	if err != nil {
		t.Fatalf("%s %s from %s: %v", network, name, from, err)
	}
	return resp
}

// lastA is the address of the last record of m's answer if it is an A record.
func lastA(m *dns.Msg) (string, bool) {
	if len(m.Answer) == 0 {
		return "", false
	}
	a, ok := m.Answer[len(m.Answer)-1].(*dns.A)
	if !ok {
		return "", false
	}
	return a.A.String(), true
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
	return serveUDPAndTCP(t, h)
}

// TestServerSuperNames: the upstream is the super cluster's DNS, which names every tenant's
// super Services and pods. A reverse query for a super cluster address (Config.ClusterAddress)
// that the tenant's own Services do not answer gets NXDOMAIN, never the upstream's name of
// another tenant's Service; other addresses are still forwarded. A tenant of another domain
// gets NXDOMAIN for names in the super domain, which the upstream would answer: super Services
// (svc.), super pods (pod.), the domain itself and any other name in it; so does one of a
// domain under the super domain, for the super domain's names outside its own. An ExternalName
// Service naming a super Service or pod is its CNAME alone, without the target's records. The
// server's own negative answers carry the SOA of the name's zone; the upstream's come as it
// gave them.
func TestServerSuperNames(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	upstream := startFakeSuperDNS(t)
	// ExternalName Services naming another tenant's super pod and super Service.
	withSuperAliases := func(tn *Tenant) *Tenant {
		own := tn.Service
		tn.Service = func(ns, name string) (Service, bool) {
			switch ns + "/" + name {
			case "default/superpod":
				return Service{ExternalName: "10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local"}, true
			case "default/supersvc":
				return Service{ExternalName: "payroll.othertenant-8f2c1d0e-finance.svc.cluster.local"}, true
			}
			return own(ns, name)
		}
		return tn
	}
	other, sub := withSuperAliases(testTenant()), testTenant()
	other.Domain, sub.Domain = "tenant.example", "t1.cluster.local"
	srv := New(Config{
		Tenant: func(ip netip.Addr) (*Tenant, bool) {
			switch ip {
			case netip.MustParseAddr("127.0.0.1"):
				return withSuperAliases(testTenant()), true
			case netip.MustParseAddr("127.0.0.2"):
				return other, true
			case netip.MustParseAddr("127.0.0.3"):
				return sub, true
			}
			return nil, false
		},
		Upstreams:         []string{upstream},
		UnknownSourceWait: -1,
		ClusterAddress: func(ip netip.Addr) bool {
			// another tenant's super Service, another tenant's pod, and a pod of the asking
			// tenant's, an endpoint of its Service db
			return ip == netip.MustParseAddr("10.96.0.99") || ip == netip.MustParseAddr("10.88.0.50") || ip == netip.MustParseAddr("10.88.0.7")
		},
		SuperDomain: "cluster.local",
	})
	addr, err := srv.Start(klog.NewContext(t.Context(), klog.FromContext(ctx)), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			from, name string
			qtype      uint16
			want       string // rcode, the answer's data and (in parentheses) the authority's SOA
		}{
			{"127.0.0.1", "99.0.96.10.in-addr.arpa.", dns.TypePTR, "NXDOMAIN (SOA in-addr.arpa.)"},                   // another tenant's Service
			{"127.0.0.1", "50.0.88.10.in-addr.arpa.", dns.TypePTR, "NXDOMAIN (SOA in-addr.arpa.)"},                   // another tenant's pod
			{"127.0.0.1", "7.0.88.10.in-addr.arpa.", dns.TypePTR, "NOERROR 10-88-0-7.db.default.svc.cluster.local."}, // its own endpoint
			{"127.0.0.1", "10.0.96.10.in-addr.arpa.", dns.TypePTR, "NOERROR web.default.svc.cluster.local."},
			{"127.0.0.1", "80.2.0.192.in-addr.arpa.", dns.TypePTR, "NOERROR www.example.com."}, // outside the cluster: forwarded
			// Addresses no tenant object has, which the upstream names by super cluster
			// Services: another tenant's control plane (the manager's Service, without
			// ownership labels) and a pod behind it, the super cluster's own DNS.
			{"127.0.0.1", "20.0.96.10.in-addr.arpa.", dns.TypePTR, "NXDOMAIN (SOA in-addr.arpa.)"},
			{"127.0.0.1", "21.0.88.10.in-addr.arpa.", dns.TypePTR, "NXDOMAIN (SOA in-addr.arpa.)"},
			{"127.0.0.2", "3.0.96.10.in-addr.arpa.", dns.TypePTR, "NXDOMAIN (SOA in-addr.arpa.)"},
			// An outside name the upstream answers with a CNAME into the super cluster.
			{"127.0.0.1", "alias.example.com.", dns.TypeA, "NXDOMAIN"},
			{"127.0.0.1", "example.com.", dns.TypeA, "NOERROR 192.0.2.80"},
			{"127.0.0.1", "nx.example.com.", dns.TypeA, "NXDOMAIN"}, // the upstream's negative answer, as it gave it
			// The tenant's own negative answers carry its zone's SOA, for negative caching.
			{"127.0.0.1", "nope.default.svc.cluster.local.", dns.TypeA, "NXDOMAIN (SOA cluster.local.)"},
			{"127.0.0.1", "web.default.svc.cluster.local.", dns.TypeAAAA, "NOERROR (SOA cluster.local.)"},
			{"127.0.0.1", "cluster.local.", dns.TypeSOA, "NOERROR SOA ns.dns.cluster.local. hostmaster.cluster.local."},
			{"127.0.0.2", "99.0.96.10.in-addr.arpa.", dns.TypePTR, "NXDOMAIN (SOA in-addr.arpa.)"},
			{"127.0.0.2", "payroll.othertenant-8f2c1d0e-finance.svc.cluster.local.", dns.TypeA, "NXDOMAIN"}, // the super domain's Services
			{"127.0.0.2", "web.default.svc.tenant.example.", dns.TypeA, "NOERROR 10.96.0.10"},
			{"127.0.0.2", "nope.default.svc.tenant.example.", dns.TypeA, "NXDOMAIN (SOA tenant.example.)"},
			{"127.0.0.2", "example.com.", dns.TypeA, "NOERROR 192.0.2.80"},
			// The rest of the super domain: a super pod, which CoreDNS's "pods verified" answers
			// only when a pod of that address is in that super namespace, the domain itself and
			// other names CoreDNS serves there. Its own domain answers a tenant of the super
			// domain.
			{"127.0.0.2", "10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local.", dns.TypeA, "NXDOMAIN"},
			{"127.0.0.2", "cluster.local.", dns.TypeSOA, "NXDOMAIN"},
			{"127.0.0.2", "Cluster.Local.", dns.TypeNS, "NXDOMAIN"},
			{"127.0.0.2", "dns-version.cluster.local.", dns.TypeTXT, "NXDOMAIN"},
			{"127.0.0.2", "podalias.example.com.", dns.TypeA, "NXDOMAIN"}, // an outside name the upstream aliases to a super pod
			{"127.0.0.1", "10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local.", dns.TypeA, "NXDOMAIN (SOA cluster.local.)"},
			{"127.0.0.1", "dns-version.cluster.local.", dns.TypeTXT, "NXDOMAIN (SOA cluster.local.)"},
			// A tenant domain under the super domain: its own names, not the rest.
			{"127.0.0.3", "web.default.svc.t1.cluster.local.", dns.TypeA, "NOERROR 10.96.0.10"},
			{"127.0.0.3", "10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local.", dns.TypeA, "NXDOMAIN"},
			{"127.0.0.3", "payroll.othertenant-8f2c1d0e-finance.svc.cluster.local.", dns.TypeA, "NXDOMAIN"},
			// ExternalName Services naming a super pod or Service: the CNAME, not what it names.
			{"127.0.0.2", "superpod.default.svc.tenant.example.", dns.TypeA, "NOERROR CNAME 10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local."},
			{"127.0.0.2", "supersvc.default.svc.tenant.example.", dns.TypeA, "NOERROR CNAME payroll.othertenant-8f2c1d0e-finance.svc.cluster.local."},
			{"127.0.0.1", "superpod.default.svc.cluster.local.", dns.TypeA, "NOERROR CNAME 10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local."},
		} {
			resp := exchangeFrom(t, addr, network, tc.from, tc.name, tc.qtype)
			got := dns.RcodeToString[resp.Rcode]
			for _, rr := range resp.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					got += " " + rr.A.String()
				case *dns.PTR:
					got += " " + rr.Ptr
				case *dns.CNAME:
					got += " CNAME " + rr.Target
				case *dns.SOA:
					got += " SOA " + rr.Ns + " " + rr.Mbox
				}
			}
			for _, rr := range resp.Ns {
				if soa, ok := rr.(*dns.SOA); ok {
					got += " (SOA " + soa.Hdr.Name + ")"
				}
			}
			if got != tc.want {
				t.Errorf("%s: %s %s from %s: %s, want %s", network, tc.name, dns.TypeToString[tc.qtype], tc.from, got, tc.want)
			}
		}
	}
}

// startFakeSuperDNS serves, as the super cluster's CoreDNS would, on UDP and TCP of one
// 127.0.0.1 port: the PTR of another tenant's super Service and of tenant pods (by their super
// names, another tenant's and the asker's own), the Service's A, the PTR of another tenant's
// control plane Service and pod and of the super cluster's DNS Service, the PTR of an address
// outside the cluster, example.com A 192.0.2.80, CNAMEs of outside names to a super Service and
// a super pod, the super pod's A (as "pods verified" or "pods insecure" answers it) and the
// super domain's SOA, NS and dns-version TXT; NXDOMAIN for anything else.
func startFakeSuperDNS(t *testing.T) string {
	t.Helper()
	records := map[string]string{}
	for _, rr := range []string{
		"99.0.96.10.in-addr.arpa. 5 IN PTR payroll.othertenant-8f2c1d0e-finance.svc.cluster.local.",
		"50.0.88.10.in-addr.arpa. 5 IN PTR db-0.db.othertenant-8f2c1d0e-finance.svc.cluster.local.",
		"7.0.88.10.in-addr.arpa. 5 IN PTR 10-88-0-7.db.demo-1a2b3c4d-default.svc.cluster.local.",
		"payroll.othertenant-8f2c1d0e-finance.svc.cluster.local. 5 IN A 10.96.0.99",
		"80.2.0.192.in-addr.arpa. 60 IN PTR www.example.com.",
		"20.0.96.10.in-addr.arpa. 5 IN PTR acme-apiserver.customers.svc.cluster.local.",
		"21.0.88.10.in-addr.arpa. 5 IN PTR 10-88-0-21.acme-apiserver.customers.svc.cluster.local.",
		"3.0.96.10.in-addr.arpa. 5 IN PTR kube-dns.kube-system.svc.cluster.local.",
		"alias.example.com. 60 IN CNAME acme-apiserver.customers.svc.cluster.local.",
		"example.com. 60 IN A 192.0.2.80",
		"podalias.example.com. 60 IN CNAME 10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local.",
		"10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local. 5 IN A 10.88.0.50",
		"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5",
		"cluster.local. 5 IN NS ns.dns.cluster.local.",
		`dns-version.cluster.local. 5 IN TXT "1.1.0"`,
	} {
		records[strings.Fields(rr)[0]+" "+strings.Fields(rr)[3]] = rr
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		s, ok := records[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]
		if !ok {
			s, ok = records[strings.ToLower(q.Name)+" CNAME"]
		}
		if ok {
			rr, _ := dns.NewRR(s)
			m.Answer = []dns.RR{rr}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	return serveUDPAndTCP(t, h)
}

// serveUDPAndTCP serves h on one loopback port over UDP and TCP and returns the address. The
// UDP port is picked first; another process may hold the same TCP port, so a few are tried.
func serveUDPAndTCP(t *testing.T, h dns.Handler) string {
	t.Helper()
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			_ = pc.Close()
			continue
		}
		for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
			go func() { _ = s.ActivateAndServe() }()
			t.Cleanup(func() { _ = s.Shutdown() })
		}
		return pc.LocalAddr().String()
	}
	t.Fatal("no loopback port free for both UDP and TCP in 10 tries")
	return ""
}

func TestSuperDomain(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"nameserver 10.96.0.10\nsearch vnest-system.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n", "cluster.local."},
		{"nameserver 10.96.0.10\nsearch corp.example svc.Super.Example\n", "super.example."},
		{"nameserver 192.0.2.1\nsearch corp.example\n", ""}, // a node's resolver: no cluster DNS
	} {
		f := filepath.Join(t.TempDir(), "resolv.conf")
		if err := os.WriteFile(f, []byte(tc.conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := SuperDomain(f); err != nil || got != tc.want {
			t.Errorf("SuperDomain of %q = %q, %v; want %q", tc.conf, got, err, tc.want)
		}
	}
}

// TestSuperName: the names the server answers NXDOMAIN rather than forward, for a tenant whose
// domain does not hold them: the reverse names of super cluster addresses (ClusterAddress), and
// the super domain and every name in it, not only its Services. Other reverse names and names
// outside go upstream, and without a super domain nothing is the super cluster's by name.
func TestSuperName(t *testing.T) {
	s := New(Config{SuperDomain: "cluster.local", ClusterAddress: func(ip netip.Addr) bool { return ip == netip.MustParseAddr("10.88.0.50") }})
	noSuper := New(Config{})
	for name, want := range map[string]bool{
		"payroll.othertenant-8f2c1d0e-finance.svc.cluster.local.":    true,
		"10-88-0-50.othertenant-8f2c1d0e-finance.pod.cluster.local":  true, // not fully qualified
		"10-88-0-50.OtherTenant-8f2c1d0e-finance.POD.cluster.local.": true,
		"cluster.local.":               true,
		"svc.cluster.local.":           true,
		"dns-version.cluster.local.":   true,
		"anything.else.cluster.local.": true,
		"50.0.88.10.in-addr.arpa.":     true,  // a super cluster address
		"80.2.0.192.in-addr.arpa.":     false, // outside
		"88.10.in-addr.arpa.":          false, // no address: not the super domain either
		"local.":                       false,
		"notcluster.local.":            false,
		"cluster.local.example.com.":   false,
		"example.com.":                 false,
	} {
		if got := s.superName(name); got != want {
			t.Errorf("superName(%s) with super domain cluster.local = %v, want %v", name, got, want)
		}
		if noSuper.superName(name) {
			t.Errorf("superName(%s) without a super domain or cluster addresses = true, want false", name)
		}
	}
}

// TestChase: the records an ExternalName Service's CNAME leads to. A target in the tenant's
// domain is answered from its own Services, following CNAMEs up to maxChase; a super cluster
// name is not looked up.
func TestChase(t *testing.T) {
	base := testTenant()
	tn := *base
	tn.Service = func(ns, name string) (Service, bool) {
		switch ns + "/" + name {
		case "default/alias":
			return Service{ExternalName: "web.default.svc.cluster.local"}, true
		case "default/loop":
			return Service{ExternalName: "loop.default.svc.cluster.local"}, true
		}
		return base.Service(ns, name)
	}
	s := New(Config{SuperDomain: "cluster.local", Tenant: func(netip.Addr) (*Tenant, bool) { return &tn, true }})
	for name, tc := range map[string]struct {
		target string
		want   []string
	}{
		"a Service of the tenant": {"web.default.svc.cluster.local.", []string{"10.96.0.10"}},
		"an alias of it":          {"alias.default.svc.cluster.local.", []string{"web.default.svc.cluster.local.", "10.96.0.10"}},
		"a loop stops":            {"loop.default.svc.cluster.local.", slices.Repeat([]string{"loop.default.svc.cluster.local."}, maxChase)},
		"no such Service":         {"nope.default.svc.cluster.local.", nil},
	} {
		var got []string
		for _, rr := range s.chase(&tn, tc.target, dns.TypeA, "udp", maxChase) {
			switch rr := rr.(type) {
			case *dns.A:
				got = append(got, rr.A.String())
			case *dns.CNAME:
				got = append(got, rr.Target)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: chase(%s) = %v, want %v", name, tc.target, got, tc.want)
		}
	}
	// A tenant of another domain: a name in the super domain is the super cluster's (a Service,
	// a pod); chase does not ask the upstreams for it.
	other := tn
	other.Domain = "tenant.example"
	var asked atomic.Bool
	s.cfg.Upstreams = []string{serveUDPAndTCP(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		asked.Store(true)
		m := new(dns.Msg)
		m.SetReply(r)
		_ = w.WriteMsg(m)
	}))}
	for _, target := range []string{"db.other-1234-default.svc.cluster.local.", "10-88-0-50.other-1234-default.pod.cluster.local."} {
		if got := s.chase(&other, target, dns.TypeA, "udp", maxChase); got != nil || asked.Load() {
			t.Errorf("chase of super cluster name %s: %v, upstream asked: %v; want nothing, not asked", target, got, asked.Load())
		}
	}
	// An outside name the upstreams answer with a super cluster name: nothing of it.
	s.cfg.Upstreams = []string{startFakeSuperDNS(t)}
	if got := s.chase(&other, "alias.example.com.", dns.TypeA, "udp", maxChase); got != nil {
		t.Errorf("chase of an outside name the upstreams alias to a super Service: %v, want nothing", got)
	}
}

// TestServerForwardLimit: each upstream exchange holds a goroutine and a socket until the
// upstream answers or ForwardTimeout passes, so a tenant's pods may have only so many going at
// a time (Server.forwarding); more get SERVFAIL without asking. Another tenant's still go.
func TestServerForwardLimit(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	upstream := startSilentUpstream(t) // never told to answer
	count := upstream.asked
	a, b := testTenant(), testTenant()
	a.Key, b.Key = "a-1", "b-2"
	srv := New(Config{
		Tenant: func(ip netip.Addr) (*Tenant, bool) {
			switch ip {
			case netip.MustParseAddr("127.0.0.1"):
				return a, true
			case netip.MustParseAddr("127.0.0.2"):
				return b, true
			}
			return nil, false
		},
		Upstreams:         []string{upstream.addr},
		ForwardTimeout:    2 * time.Second,
		UnknownSourceWait: -1,
	})
	const limit = 4
	srv.forwarding = keylimit.New(limit)
	addr, err := srv.Start(klog.NewContext(t.Context(), klog.FromContext(ctx)), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ask := func(from, name string) (int, error) {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		resp, _, err := c.Exchange(m, addr.String())
		if err != nil {
			return 0, err
		}
		return resp.Rcode, nil
	}
	var wg sync.WaitGroup
	for range 2 * limit {
		wg.Go(func() {
			if rcode, err := ask("127.0.0.1", "slow.example."); err != nil || rcode != dns.RcodeServerFailure {
				t.Errorf("slow.example. from tenant a: %s, %v; want SERVFAIL", dns.RcodeToString[rcode], err)
			}
		})
	}
	for deadline := time.Now().Add(time.Second); count("slow.example.") < limit && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	wg.Go(func() {
		if rcode, err := ask("127.0.0.2", "other.example."); err != nil || rcode != dns.RcodeServerFailure {
			t.Errorf("other.example. from tenant b: %s, %v; want SERVFAIL", dns.RcodeToString[rcode], err)
		}
	})
	wg.Wait()
	if got := count("slow.example."); got > limit {
		t.Errorf("the upstream was asked %d queries of tenant a at once, want at most %d", got, limit)
	}
	if got := count("other.example."); got != 1 {
		t.Errorf("the upstream was asked %d queries of tenant b while tenant a's were at the limit, want 1", got)
	}
}

// silentUpstream is a nameserver on a 127.0.0.1 UDP port that answers no query until it is told
// to (answer), and counts the queries it was asked, by name.
type silentUpstream struct {
	addr string
	pc   net.PacketConn

	mu    sync.Mutex
	names map[string]int
	held  []heldQuery // not answered yet
}

type heldQuery struct {
	from net.Addr
	msg  *dns.Msg
}

func startSilentUpstream(t testing.TB) *silentUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	u := &silentUpstream{addr: pc.LocalAddr().String(), pc: pc, names: map[string]int{}}
	go func() {
		buf := make([]byte, dns.MaxMsgSize)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) == nil && len(m.Question) == 1 {
				u.mu.Lock()
				u.names[m.Question[0].Name]++
				u.held = append(u.held, heldQuery{from: from, msg: m})
				u.mu.Unlock()
			}
		}
	}()
	return u
}

// asked is how many queries for name it was asked.
func (u *silentUpstream) asked(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.names[name]
}

// holding is how many queries it holds unanswered.
func (u *silentUpstream) holding() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.held)
}

// answer answers SERVFAIL to every query it holds.
func (u *silentUpstream) answer() {
	u.mu.Lock()
	held := u.held
	u.held = nil
	u.mu.Unlock()
	for _, q := range held {
		m := new(dns.Msg)
		m.SetRcode(q.msg, dns.RcodeServerFailure)
		if out, err := m.Pack(); err == nil {
			_, _ = u.pc.WriteTo(out, q.from)
		}
	}
}
