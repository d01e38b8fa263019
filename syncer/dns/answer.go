package dns

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// ttl of every answer, in seconds: short, because Services and endpoints change under it.
const ttl = 5

// Tenant is what a pod of one tenant may resolve.
type Tenant struct {
	// Key tells tenants apart (the cluster key): each has its own maxForwarding.
	Key string
	// Domain is the tenant's cluster domain, e.g. cluster.local.
	Domain string
	// Service returns the tenant Service ns/name as pods see it; ok is false when there is none.
	Service func(ns, name string) (svc Service, ok bool)
	// Namespace reports whether tenant namespace ns exists: <ns>.svc.<domain> is a name
	// without records then, and NXDOMAIN otherwise, as CoreDNS answers. Nil: every namespace
	// exists.
	Namespace func(ns string) bool
	// ServiceByIP returns the tenant Service whose ClusterIP is ip, for PTR queries; nil or
	// ok false: none.
	ServiceByIP func(ip netip.Addr) (ns, name string, ok bool)
	// EndpointsByIP returns the ready endpoint addresses ip is of the tenant's Services, for PTR
	// queries of an address no ClusterIP is (a StatefulSet's peers behind a headless Service);
	// nil: none.
	EndpointsByIP func(ip netip.Addr) []ServiceEndpoint
	// Self is the asking pod, when it has a subdomain: its own name, which a kubelet writes into
	// its /etc/hosts, resolves for it alone.
	Self *Pod
	// Nameserver is the address pods reach this server on (their resolv.conf's nameserver):
	// the address of ns.dns.<domain>, the name server of the domain's NS record, as CoreDNS
	// answers with its own Service's address. Empty: the domain has no NS record.
	Nameserver string
	// Syncing: the caches the names come from have not synced yet, so a name missing from them
	// may exist. Names in Domain are SERVFAIL, which resolvers retry and do not cache, as
	// CoreDNS serves none before its caches synced; others are still forwarded.
	Syncing bool
}

// Pod is a tenant pod with a subdomain, known by its own name
// <Hostname>.<Subdomain>.<Namespace>.svc.<domain>.
type Pod struct {
	Namespace, Hostname, Subdomain string
	IPs                            []string
}

// Service is a tenant Service as DNS answers it.
type Service struct {
	// ClusterIP is the address pods reach the Service on (the super Service's ClusterIP); empty
	// for a headless Service, and for a ClusterIP Service that has no super Service yet.
	ClusterIP string
	// Headless: A records are the ready endpoint addresses.
	Headless bool
	// ExternalName, when set, is answered as a CNAME.
	ExternalName string
	// Endpoints are the ready endpoint addresses.
	Endpoints []Endpoint
	// Ports are the Service's ports (a headless Service's: its endpoint ports), for SRV.
	Ports []Port
}

// Endpoint is one ready endpoint address.
type Endpoint struct {
	IP       string
	Hostname string // the pod's hostname when it has a subdomain that names the Service
}

// ServiceEndpoint is a ready endpoint address of tenant Service Namespace/Service.
type ServiceEndpoint struct {
	Namespace, Service string
	Endpoint
}

// Port is one named port of a Service.
type Port struct {
	Name     string
	Protocol string // TCP, UDP or SCTP
	Port     int32
}

// Reply is the tenant DNS's reply to one question.
type Reply struct {
	Rcode  int
	Answer []dns.RR
	// Ns, the authority section, is the SOA of the zone of a name the reply has no records of
	// (NXDOMAIN, or NODATA), as CoreDNS gives it: resolvers cache the negative answer for its
	// minimum TTL (RFC 2308), and some stubs do not cache one without it.
	Ns []dns.RR
	// Extra, the additional section: the address of the name server an NS answer names.
	Extra []dns.RR
	// Forward: the name is outside the tenant's domain; the upstream nameservers answer.
	Forward bool
}

// Answer is the reply to question q from a pod of tenant t.
func Answer(q dns.Question, t *Tenant) Reply {
	name := strings.ToLower(dns.Fqdn(q.Name))
	domain := strings.ToLower(dns.Fqdn(t.Domain))
	if t.Syncing && dns.IsSubDomain(domain, name) {
		return Reply{Rcode: dns.RcodeServerFailure}
	}
	rcode, answer, forward := records(name, q.Qtype, domain, t)
	if forward {
		return Reply{Forward: true}
	}
	if len(answer) > 0 {
		r := Reply{Rcode: rcode, Answer: answer}
		if (q.Qtype == dns.TypeNS || q.Qtype == dns.TypeANY) && name == domain {
			r.Extra = addresses(nsName(domain), dns.TypeANY, []string{t.Nameserver})
		}
		return r
	}
	return negative(rcode, name, domain)
}

// nsName is the name of the domain's name server, CoreDNS's: ns.dns.<domain>.
func nsName(domain string) string {
	return "ns.dns." + domain
}

// negative is a reply of rcode (NXDOMAIN, or NOERROR for NODATA) without records for name, with
// the SOA of its zone: domain, or the reverse zone of a reverse name, which CoreDNS serves too.
// Names outside these (in the super cluster's domain, Config.SuperDomain) go without.
func negative(rcode int, name, domain string) Reply {
	for _, zone := range []string{domain, "in-addr.arpa.", "ip6.arpa."} {
		if dns.IsSubDomain(zone, name) {
			return Reply{Rcode: rcode, Ns: []dns.RR{soa(zone)}}
		}
	}
	return Reply{Rcode: rcode}
}

// serial of every SOA: no secondary transfers the zones, so no one compares serials (CoreDNS's
// is the time its data last changed).
const serial = 1

// soa is the SOA record of zone, with CoreDNS's values: a negative answer lives ttl seconds, as
// long as a positive one.
func soa(zone string) dns.RR {
	return &dns.SOA{Hdr: header(zone, dns.TypeSOA), Ns: "ns.dns." + zone, Mbox: "hostmaster." + zone,
		Serial: serial, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: ttl}
}

// records answers name (lower case, fully qualified), asked for type qtype, from tenant t of
// domain: rcode and the answer records; forward is true when the name is outside the domain.
func records(name string, qtype uint16, domain string, t *Tenant) (rcode int, answer []dns.RR, forward bool) {
	if ip, ok := reverseAddr(name); ok {
		return reverse(name, qtype, ip, domain, t)
	}
	if !dns.IsSubDomain(domain, name) {
		return 0, nil, true
	}
	labels := dns.SplitDomainName(strings.TrimSuffix(name, domain))
	n := len(labels)
	switch {
	case n == 0:
		var out []dns.RR
		if qtype == dns.TypeSOA || qtype == dns.TypeANY {
			out = append(out, soa(domain))
		}
		if (qtype == dns.TypeNS || qtype == dns.TypeANY) && t.Nameserver != "" {
			out = append(out, &dns.NS{Hdr: header(domain, dns.TypeNS), Ns: nsName(domain)})
		}
		return dns.RcodeSuccess, out, false
	case n == 1 && (labels[0] == "svc" || labels[0] == "dns" && t.Nameserver != ""):
		return dns.RcodeSuccess, nil, false // svc.D, dns.D: names without records
	case n == 2 && labels[1] == "dns" && labels[0] == "ns" && t.Nameserver != "":
		return dns.RcodeSuccess, addresses(name, qtype, []string{t.Nameserver}), false
	case n == 2 && labels[1] == "svc":
		// <ns>.svc.D: without records when the namespace exists, else NXDOMAIN as in CoreDNS;
		// a NODATA for any <x> would end a search-list walk (musl's) for the single label x.
		if t.Namespace != nil && !t.Namespace(labels[0]) {
			return dns.RcodeNameError, nil, false
		}
		return dns.RcodeSuccess, nil, false
	case labels[n-1] != "svc" || n > 5:
		return dns.RcodeNameError, nil, false
	case n == 4 && t.Self.named(labels):
		// the pod's own name, from its /etc/hosts in any cluster: a Service need not exist.
		return dns.RcodeSuccess, addresses(name, qtype, t.Self.IPs), false
	}
	svc, ok := t.Service(labels[n-2], labels[n-3])
	if !ok {
		return dns.RcodeNameError, nil, false
	}
	switch n {
	case 3: // <svc>.<ns>.svc.D
		if svc.ExternalName != "" {
			return dns.RcodeSuccess, []dns.RR{&dns.CNAME{Hdr: header(name, dns.TypeCNAME), Target: dns.Fqdn(svc.ExternalName)}}, false
		}
		ips := []string{svc.ClusterIP}
		if svc.Headless {
			ips = nil
			for _, ep := range svc.Endpoints {
				ips = append(ips, ep.IP)
			}
		}
		return dns.RcodeSuccess, addresses(name, qtype, ips), false
	case 4: // <host>.<svc>.<ns>.svc.D
		var ips []string
		for _, ep := range svc.Endpoints {
			if endpointName(ep) == labels[0] {
				ips = append(ips, ep.IP)
			}
		}
		if len(ips) == 0 {
			return dns.RcodeNameError, nil, false
		}
		return dns.RcodeSuccess, addresses(name, qtype, ips), false
	}
	// _<port>._<proto>.<svc>.<ns>.svc.D
	if !strings.HasPrefix(labels[0], "_") || !strings.HasPrefix(labels[1], "_") {
		return dns.RcodeNameError, nil, false
	}
	svcName := strings.Join(labels[2:], ".") + "." + domain
	var out []dns.RR
	for _, p := range svc.Ports {
		if p.Name == "" || "_"+strings.ToLower(p.Name) != labels[0] || "_"+strings.ToLower(p.Protocol) != labels[1] {
			continue
		}
		if !svc.Headless {
			out = append(out, srv(name, qtype, svcName, p.Port)...)
			continue
		}
		for _, ep := range svc.Endpoints {
			out = append(out, srv(name, qtype, endpointName(ep)+"."+svcName, p.Port)...)
		}
	}
	if len(out) == 0 && !hasPort(svc.Ports, labels[0], labels[1]) {
		return dns.RcodeNameError, nil, false
	}
	return dns.RcodeSuccess, out, false
}

// named reports whether labels (host, subdomain, namespace, "svc") are the pod's own name.
func (p *Pod) named(labels []string) bool {
	return p != nil && strings.EqualFold(labels[0], p.Hostname) && strings.EqualFold(labels[1], p.Subdomain) &&
		strings.EqualFold(labels[2], p.Namespace)
}

// endpointName is the first label of an endpoint's own name: its hostname, or else its IP with
// dashes, as CoreDNS names endpoints of headless Services, forward and reverse. An IPv6 address
// that ends in "::" gets a "0" after its dashes (fd00:: is fd00--0), as CoreDNS gives it since
// coredns/coredns#7431: a label may not end in a dash. A leading "::" keeps its dashes (::5 is --5), as in
// CoreDNS, which changes only the end.
func endpointName(ep Endpoint) string {
	if ep.Hostname != "" {
		return strings.ToLower(ep.Hostname)
	}
	name := strings.NewReplacer(".", "-", ":", "-").Replace(ep.IP)
	if strings.HasSuffix(name, "-") {
		name += "0"
	}
	return name
}

func hasPort(ports []Port, name, proto string) bool {
	for _, p := range ports {
		if p.Name != "" && "_"+strings.ToLower(p.Name) == name && "_"+strings.ToLower(p.Protocol) == proto {
			return true
		}
	}
	return false
}

func header(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: ttl}
}

// addresses are the A (or AAAA) records of ips for a question of type qtype; other types and
// addresses of the other family have none.
func addresses(name string, qtype uint16, ips []string) []dns.RR {
	var out []dns.RR
	for _, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
			out = append(out, &dns.A{Hdr: header(name, dns.TypeA), A: ip.AsSlice()})
		case ip.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			out = append(out, &dns.AAAA{Hdr: header(name, dns.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
	return out
}

func srv(name string, qtype uint16, target string, port int32) []dns.RR {
	if qtype != dns.TypeSRV && qtype != dns.TypeANY {
		return nil
	}
	return []dns.RR{&dns.SRV{Hdr: header(name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(port), Target: target}}
}

// reverse answers a reverse (PTR) query for ip as CoreDNS does: the name of the tenant Service
// with that ClusterIP, <svc>.<ns>.svc.D; else the names of ip as a ready endpoint address of the
// tenant's Services, <hostname or dashed IP>.<svc>.<ns>.svc.D, one per Service. Any other
// address goes to the upstreams, as CoreDNS falls through for reverse zones it has no record
// in (the Server answers NXDOMAIN instead for a super cluster address, Config.ClusterAddress).
func reverse(name string, qtype uint16, ip netip.Addr, domain string, t *Tenant) (rcode int, answer []dns.RR, forward bool) {
	var targets []string
	if t.ServiceByIP != nil {
		if ns, svc, ok := t.ServiceByIP(ip); ok {
			targets = []string{svc + "." + ns + ".svc." + domain}
		}
	}
	if len(targets) == 0 && t.EndpointsByIP != nil {
		for _, ep := range t.EndpointsByIP(ip) {
			targets = append(targets, endpointName(ep.Endpoint)+"."+ep.Service+"."+ep.Namespace+".svc."+domain)
		}
		slices.Sort(targets)
		targets = slices.Compact(targets) // an address in two subsets (other ports) is one name
	}
	if len(targets) == 0 {
		return 0, nil, true
	}
	if qtype != dns.TypePTR && qtype != dns.TypeANY {
		return dns.RcodeSuccess, nil, false
	}
	for _, target := range targets {
		answer = append(answer, &dns.PTR{Hdr: header(name, dns.TypePTR), Ptr: target})
	}
	return dns.RcodeSuccess, answer, false
}

// reverseAddr is the address a reverse name stands for: d.c.b.a.in-addr.arpa. for a.b.c.d, 32
// nibbles then ip6.arpa. for IPv6. ok is false for any other name, including partial ones.
func reverseAddr(name string) (netip.Addr, bool) {
	labels := dns.SplitDomainName(name)
	n := len(labels)
	switch {
	case n == 6 && labels[4] == "in-addr" && labels[5] == "arpa":
		ip, err := netip.ParseAddr(labels[3] + "." + labels[2] + "." + labels[1] + "." + labels[0])
		return ip, err == nil && ip.Is4()
	case n == 34 && labels[32] == "ip6" && labels[33] == "arpa":
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			if len(labels[i]) != 1 {
				return netip.Addr{}, false
			}
			b.WriteString(labels[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		ip, err := netip.ParseAddr(b.String())
		return ip, err == nil && ip.Is6()
	}
	return netip.Addr{}, false
}
