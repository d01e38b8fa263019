package dns

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// testTenant has, in namespace default: web (ClusterIP, super IP 10.96.0.10, port http, and
// the pod db-0 a ready endpoint of it too), db (headless: two ready pods db-0 and db-1, and one
// without hostname), ext (ExternalName), pending (ClusterIP, no super Service yet); in
// kube-system: v6 (ClusterIP fd00::10, one endpoint fd00::5) and v6db (headless: fd00:: and
// fd00::6, port dns, neither with a hostname). Namespace empty exists without
// Services; other namespaces do not exist. The asking pod is me, of subdomain nosvc (no such
// Service), at 10.88.0.9.
func testTenant() *Tenant {
	services := map[string]Service{
		"default/web": {ClusterIP: "10.96.0.10", Ports: []Port{{Name: "http", Protocol: "TCP", Port: 8080}},
			Endpoints: []Endpoint{{IP: "10.88.0.5"}}},
		"default/db": {Headless: true, Endpoints: []Endpoint{
			{IP: "10.88.0.5", Hostname: "db-0"}, {IP: "10.88.0.6", Hostname: "db-1"}, {IP: "10.88.0.7"},
		}, Ports: []Port{{Name: "pg", Protocol: "TCP", Port: 5432}}},
		"default/ext":     {ExternalName: "example.com"},
		"default/pending": {},
		"kube-system/v6":  {ClusterIP: "fd00::10", Endpoints: []Endpoint{{IP: "fd00::5"}}},
		"kube-system/v6db": {Headless: true, Endpoints: []Endpoint{{IP: "fd00::"}, {IP: "fd00::6"}},
			Ports: []Port{{Name: "dns", Protocol: "UDP", Port: 53}}},
	}
	self := &Pod{Namespace: "default", Hostname: "me", Subdomain: "nosvc", IPs: []string{"10.88.0.9"}}
	return &Tenant{Domain: "cluster.local", Nameserver: "10.96.0.53", Self: self, Service: func(ns, name string) (Service, bool) {
		s, ok := services[ns+"/"+name]
		return s, ok
	}, Namespace: func(ns string) bool {
		return ns == "default" || ns == "kube-system" || ns == "empty"
	}, ServiceByIP: func(ip netip.Addr) (string, string, bool) {
		for key, s := range services {
			if a, err := netip.ParseAddr(s.ClusterIP); err == nil && a == ip {
				ns, name, _ := strings.Cut(key, "/")
				return ns, name, true
			}
		}
		return "", "", false
	}, EndpointsByIP: func(ip netip.Addr) []ServiceEndpoint {
		var out []ServiceEndpoint
		for key, s := range services {
			for _, ep := range s.Endpoints {
				if a, err := netip.ParseAddr(ep.IP); err == nil && a == ip {
					ns, name, _ := strings.Cut(key, "/")
					out = append(out, ServiceEndpoint{Namespace: ns, Service: name, Endpoint: ep})
				}
			}
		}
		return out
	}}
}

// soaOf is the SOA record of zone as Answer gives it, in CoreDNS's values.
func soaOf(zone string) string {
	return zone + "\t5\tIN\tSOA\tns.dns." + zone + " hostmaster." + zone + " 1 7200 1800 86400 5"
}

func TestAnswer(t *testing.T) {
	a := func(name, ip string) string { return name + "\t5\tIN\tA\t" + ip }
	const nsRecord = "cluster.local.\t5\tIN\tNS\tns.dns.cluster.local."
	for _, tc := range []struct {
		name    string
		q       string
		qtype   uint16
		rcode   int
		answer  []string
		extra   []string // the additional section
		forward bool
		// ns is the authority section; for a reply without records (NXDOMAIN, NODATA) nil
		// means cluster.local's SOA.
		ns []string
	}{
		{name: "ClusterIP service: the super ClusterIP", q: "web.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{a("web.default.svc.cluster.local.", "10.96.0.10")}},
		{name: "case does not matter", q: "WEB.Default.svc.Cluster.Local.", qtype: dns.TypeA,
			answer: []string{a("web.default.svc.cluster.local.", "10.96.0.10")}},
		{name: "AAAA of an IPv4 service: no data", q: "web.default.svc.cluster.local.", qtype: dns.TypeAAAA},
		{name: "PTR of a Service's ClusterIP", q: "10.0.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"10.0.96.10.in-addr.arpa.\t5\tIN\tPTR\tweb.default.svc.cluster.local."}},
		{name: "PTR of an IPv6 ClusterIP", q: "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.\t5\tIN\tPTR\tv6.kube-system.svc.cluster.local."}},
		{name: "A of a Service's reverse name: no data, with the reverse zone's SOA", q: "10.0.96.10.in-addr.arpa.", qtype: dns.TypeA,
			ns: []string{soaOf("in-addr.arpa.")}},
		{name: "PTR of a headless Service's endpoint: its hostname, and its dashed IP in a Service that names it not",
			q: "5.0.88.10.in-addr.arpa.", qtype: dns.TypePTR, answer: []string{
				"5.0.88.10.in-addr.arpa.\t5\tIN\tPTR\t10-88-0-5.web.default.svc.cluster.local.",
				"5.0.88.10.in-addr.arpa.\t5\tIN\tPTR\tdb-0.db.default.svc.cluster.local."}},
		{name: "PTR of an endpoint without hostname: its dashed IP", q: "7.0.88.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"7.0.88.10.in-addr.arpa.\t5\tIN\tPTR\t10-88-0-7.db.default.svc.cluster.local."}},
		{name: "PTR of an IPv6 endpoint", q: "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.\t5\tIN\tPTR\tfd00--5.v6.kube-system.svc.cluster.local."}},
		// A label may not end in a dash: CoreDNS adds a 0 to fd00--, in either direction.
		{name: "PTR of an IPv6 endpoint ending in ::", q: reverseName("fd00::"), qtype: dns.TypePTR,
			answer: []string{reverseName("fd00::") + "\t5\tIN\tPTR\tfd00--0.v6db.kube-system.svc.cluster.local."}},
		{name: "IPv6 endpoint ending in :: by its dashed IP", q: "fd00--0.v6db.kube-system.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00--0.v6db.kube-system.svc.cluster.local.\t5\tIN\tAAAA\tfd00::"}},
		{name: "IPv6 endpoint ending in :: by a dashed IP ending in a dash: none", q: "fd00--.v6db.kube-system.svc.cluster.local.",
			qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
		{name: "SRV of a headless IPv6 Service names an endpoint ending in :: with the 0", q: "_dns._udp.v6db.kube-system.svc.cluster.local.",
			qtype: dns.TypeSRV, answer: []string{
				"_dns._udp.v6db.kube-system.svc.cluster.local.\t5\tIN\tSRV\t0 100 53 fd00--0.v6db.kube-system.svc.cluster.local.",
				"_dns._udp.v6db.kube-system.svc.cluster.local.\t5\tIN\tSRV\t0 100 53 fd00--6.v6db.kube-system.svc.cluster.local."}},
		{name: "A of an endpoint's reverse name: no data", q: "7.0.88.10.in-addr.arpa.", qtype: dns.TypeA,
			ns: []string{soaOf("in-addr.arpa.")}},
		{name: "PTR of another address: upstream", q: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, forward: true},
		{name: "a partial reverse name: upstream", q: "96.10.in-addr.arpa.", qtype: dns.TypePTR, forward: true},
		{name: "IPv6 service", q: "v6.kube-system.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"v6.kube-system.svc.cluster.local.\t5\tIN\tAAAA\tfd00::10"}},
		{name: "headless: the ready addresses", q: "db.default.svc.cluster.local.", qtype: dns.TypeA, answer: []string{
			a("db.default.svc.cluster.local.", "10.88.0.5"), a("db.default.svc.cluster.local.", "10.88.0.6"), a("db.default.svc.cluster.local.", "10.88.0.7")}},
		{name: "StatefulSet pod by hostname", q: "db-1.db.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{a("db-1.db.default.svc.cluster.local.", "10.88.0.6")}},
		{name: "endpoint without hostname by its dashed IP", q: "10-88-0-7.db.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{a("10-88-0-7.db.default.svc.cluster.local.", "10.88.0.7")}},
		{name: "unknown hostname", q: "db-2.db.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "the asking pod's own name, as in its /etc/hosts (no Service needed)", q: "me.nosvc.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{a("me.nosvc.default.svc.cluster.local.", "10.88.0.9")}},
		{name: "own name, any case", q: "ME.NoSvc.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{a("me.nosvc.default.svc.cluster.local.", "10.88.0.9")}},
		{name: "AAAA of the own name of an IPv4 pod: no data", q: "me.nosvc.default.svc.cluster.local.", qtype: dns.TypeAAAA},
		{name: "another host of the asking pod's subdomain", q: "you.nosvc.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "the own name in another namespace", q: "me.nosvc.other.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "unknown service", q: "nope.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "service of another namespace", q: "web.other.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "unknown service of a namespace without Services", q: "nope.empty.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "service without super Service yet: no data", q: "pending.default.svc.cluster.local.", qtype: dns.TypeA},
		{name: "ExternalName: CNAME", q: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ext.default.svc.cluster.local.\t5\tIN\tCNAME\texample.com."}},
		{name: "SRV of a named port", q: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.web.default.svc.cluster.local.\t5\tIN\tSRV\t0 100 8080 web.default.svc.cluster.local."}},
		{name: "SRV of a headless service names the endpoints", q: "_pg._tcp.db.default.svc.cluster.local.", qtype: dns.TypeSRV, answer: []string{
			"_pg._tcp.db.default.svc.cluster.local.\t5\tIN\tSRV\t0 100 5432 db-0.db.default.svc.cluster.local.",
			"_pg._tcp.db.default.svc.cluster.local.\t5\tIN\tSRV\t0 100 5432 db-1.db.default.svc.cluster.local.",
			"_pg._tcp.db.default.svc.cluster.local.\t5\tIN\tSRV\t0 100 5432 10-88-0-7.db.default.svc.cluster.local."}},
		{name: "SRV of an unknown port", q: "_nope._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError},
		{name: "namespace name exists without records", q: "default.svc.cluster.local.", qtype: dns.TypeA},
		{name: "so does a namespace without Services", q: "empty.svc.cluster.local.", qtype: dns.TypeSRV},
		// Not NODATA, which ends a search-list walk (musl) at <name>.svc.D for a single label.
		{name: "a missing namespace is NXDOMAIN, as in CoreDNS", q: "other.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "a missing namespace, asked for another type", q: "other.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
		{name: "svc.domain exists", q: "svc.cluster.local.", qtype: dns.TypeA},
		{name: "the domain exists", q: "cluster.local.", qtype: dns.TypeA},
		{name: "the domain's SOA", q: "Cluster.Local.", qtype: dns.TypeSOA, answer: []string{soaOf("cluster.local.")}},
		{name: "the domain's SOA and NS for ANY", q: "cluster.local.", qtype: dns.TypeANY, answer: []string{soaOf("cluster.local."), nsRecord},
			extra: []string{a("ns.dns.cluster.local.", "10.96.0.53")}},
		{name: "the domain's NS: CoreDNS's ns.dns.D, with its address", q: "cluster.local.", qtype: dns.TypeNS, answer: []string{nsRecord},
			extra: []string{a("ns.dns.cluster.local.", "10.96.0.53")}},
		{name: "the name server's address", q: "ns.dns.cluster.local.", qtype: dns.TypeA, answer: []string{a("ns.dns.cluster.local.", "10.96.0.53")}},
		{name: "the name server has no IPv6 address", q: "ns.dns.cluster.local.", qtype: dns.TypeAAAA},
		{name: "dns.D exists", q: "dns.cluster.local.", qtype: dns.TypeA},
		{name: "other names under dns.D do not", q: "x.dns.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "NS of a name below the domain: no data", q: "svc.cluster.local.", qtype: dns.TypeNS},
		{name: "SOA of a name below the domain: no data", q: "web.default.svc.cluster.local.", qtype: dns.TypeSOA},
		{name: "a search-list miss is NXDOMAIN", q: "example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "pod names are not served", q: "10-88-0-5.default.pod.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "too deep", q: "a.b.c.d.e.f.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "outside the domain: forwarded", q: "example.com.", qtype: dns.TypeA, forward: true},
		{name: "a look-alike domain is outside", q: "web.default.svc.xcluster.local.", qtype: dns.TypeA, forward: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Answer(dns.Question{Name: tc.q, Qtype: tc.qtype, Qclass: dns.ClassINET}, testTenant())
			if r.Rcode != tc.rcode || r.Forward != tc.forward {
				t.Errorf("rcode, forward = %s, %v; want %s, %v", dns.RcodeToString[r.Rcode], r.Forward, dns.RcodeToString[tc.rcode], tc.forward)
			}
			if diff := cmp.Diff(tc.answer, rrStrings(r.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.extra, rrStrings(r.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
			if tc.ns == nil && len(tc.answer) == 0 && !tc.forward {
				tc.ns = []string{soaOf("cluster.local.")}
			}
			if diff := cmp.Diff(tc.ns, rrStrings(r.Ns)); diff != "" {
				t.Errorf("authority (-want +got):\n%s", diff)
			}
		})
	}
}

// reverseName is the reverse name of address ip.
func reverseName(ip string) string {
	name, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return name
}

// TestEndpointName: an endpoint without hostname is named by its IP with dashes, as CoreDNS
// names it (plugin/kubernetes endpointHostname), a 0 added when that ends in a dash.
func TestEndpointName(t *testing.T) {
	for _, tc := range []struct {
		ep   Endpoint
		want string
	}{
		{Endpoint{IP: "10.88.0.7"}, "10-88-0-7"},
		{Endpoint{IP: "10.88.0.7", Hostname: "DB-0"}, "db-0"},
		{Endpoint{IP: "fd00::5"}, "fd00--5"},
		{Endpoint{IP: "fd00::"}, "fd00--0"},
		{Endpoint{IP: "2001:db8:3333:4444:5555:6666::"}, "2001-db8-3333-4444-5555-6666--0"},
		{Endpoint{IP: "fd00::", Hostname: "peer"}, "peer"},
		{Endpoint{IP: "::5"}, "--5"}, // CoreDNS changes only the end
	} {
		if got := endpointName(tc.ep); got != tc.want {
			t.Errorf("endpointName(%+v) = %q, want %q", tc.ep, got, tc.want)
		}
	}
}

// rrStrings is rrs in zone file format.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

func TestAnswerOtherDomain(t *testing.T) {
	tn := testTenant()
	tn.Domain = "Tenant.Example"
	if r := Answer(dns.Question{Name: "web.default.svc.cluster.local.", Qtype: dns.TypeA}, tn); !r.Forward {
		t.Error("cluster.local is not the domain of a tenant.example tenant, want it forwarded")
	}
	if r := Answer(dns.Question{Name: "web.default.svc.tenant.example.", Qtype: dns.TypeA}, tn); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("web.default.svc.tenant.example: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	r := Answer(dns.Question{Name: "nope.default.svc.tenant.example.", Qtype: dns.TypeA}, tn)
	if diff := cmp.Diff([]string{soaOf("tenant.example.")}, rrStrings(r.Ns)); r.Rcode != dns.RcodeNameError || diff != "" {
		t.Errorf("nope.default.svc.tenant.example: %s, authority (-want +got):\n%s", dns.RcodeToString[r.Rcode], diff)
	}
}

// TestAnswerSyncing: until the tenant's caches have synced, a name of its domain missing from
// them may exist: SERVFAIL, which resolvers retry, not an NXDOMAIN they cache. Other names are
// still forwarded; reverse names of Services still answer.
func TestAnswerSyncing(t *testing.T) {
	tn := testTenant()
	tn.Syncing = true
	for _, tc := range []struct {
		q       string
		qtype   uint16
		rcode   int
		forward bool
	}{
		{q: "web.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{q: "nope.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{q: "cluster.local.", qtype: dns.TypeSOA, rcode: dns.RcodeServerFailure},
		{q: "example.com.", qtype: dns.TypeA, forward: true},
		{q: "10.0.96.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeSuccess},
		{q: "7.0.88.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeSuccess},
	} {
		r := Answer(dns.Question{Name: tc.q, Qtype: tc.qtype, Qclass: dns.ClassINET}, tn)
		if r.Rcode != tc.rcode || r.Forward != tc.forward || (tc.rcode == dns.RcodeServerFailure && (r.Answer != nil || r.Ns != nil)) {
			t.Errorf("%s %s while syncing: %s, forward %v, %v %v; want %s, forward %v", tc.q, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], r.Forward, r.Answer, r.Ns, dns.RcodeToString[tc.rcode], tc.forward)
		}
	}
}
