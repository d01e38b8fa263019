package syncer

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/internal/ownership"
	tenantdns "github.com/vnest-dev/vnest/syncer/dns"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Tenant DNS (package dns): the syncer serves every tenant's cluster DNS itself. A query's
// source IP is a super pod's IP (indexPodIP), whose ownership labels name the tenant; the
// answers come from that tenant's Namespace, Service and Endpoints caches, with the super
// ClusterIPs pods can reach. Pods that use cluster DNS go down with the server as their only
// nameserver and the tenant's search path (podDNS).

// indexPodIP indexes the super pods that may ask the DNS server by their pod IPs: running or
// pending, not on the host network (whose address is the node's, shared by many).
const indexPodIP = "podIP"

// indexServiceIP indexes super Services by their cluster IPs, for reverse lookups.
const indexServiceIP = "serviceIP"

// indexEndpointIP indexes tenant Endpoints by their ready addresses, for reverse lookups of
// endpoint addresses.
const indexEndpointIP = "endpointIP"

// defaultClusterDomain is spec.clusterDomain when it is empty (the CRD defaults it too).
const defaultClusterDomain = "cluster.local"

func podIPIndex(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.HostNetwork || podTerminal(p) || p.Labels[ownership.LabelClusterKey] == "" {
		return nil, nil
	}
	return uniqueIPs(append([]string{p.Status.PodIP}, podIPs(p)...)), nil
}

func serviceIPIndex(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	return uniqueIPs(append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...)), nil
}

func endpointIPIndex(obj any) ([]string, error) {
	ep, ok := obj.(*corev1.Endpoints)
	if !ok {
		return nil, nil
	}
	var addrs []string
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			addrs = append(addrs, a.IP)
		}
	}
	return uniqueIPs(addrs), nil
}

// uniqueIPs is the index values of addresses: each that parses, in its canonical form, once.
func uniqueIPs(addrs []string) []string {
	var out []string
	for _, s := range addrs {
		if ip, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, ip.String()) {
			out = append(out, ip.String())
		}
	}
	return out
}

func podIPs(p *corev1.Pod) []string {
	out := make([]string, 0, len(p.Status.PodIPs))
	for _, ip := range p.Status.PodIPs {
		out = append(out, ip.IP)
	}
	return out
}

// dnsAdvertiseIP checks the DNS flags and returns the nameserver IP pods get; "" when off.
func dnsAdvertiseIP(bind, advertise string) (string, error) {
	if bind == "" {
		if advertise != "" {
			return "", fmt.Errorf("--dns-advertise-address needs --dns-bind-address")
		}
		return "", nil
	}
	if _, _, err := net.SplitHostPort(bind); err != nil {
		return "", fmt.Errorf("--dns-bind-address %q: want host:port: %w", bind, err)
	}
	if _, err := netip.ParseAddr(advertise); err != nil {
		return "", fmt.Errorf("--dns-advertise-address %q: want the IP pods reach the DNS server on, at port 53 (resolv.conf has no ports)", advertise)
	}
	return advertise, nil
}

func (s *Syncer) dnsNameserver() string {
	if s.opts == nil {
		return ""
	}
	return s.opts.dns
}

// serveDNS starts the tenant DNS server when it is on.
func (s *Syncer) serveDNS(ctx context.Context) error {
	if s.dnsNameserver() == "" {
		return nil
	}
	upstreams, err := tenantdns.Upstreams("/etc/resolv.conf")
	if err != nil {
		return err
	}
	superDomain, err := tenantdns.SuperDomain("/etc/resolv.conf")
	if err != nil {
		return err
	}
	srv := tenantdns.New(tenantdns.Config{Tenant: s.dnsTenant, Upstreams: upstreams,
		ClusterAddress: s.dnsClusterAddress, SuperDomain: superDomain,
		Starting: func() bool { return s.start.starting(s.now()) }})
	_, err = srv.Start(ctx, s.opts.DNSBindAddress)
	return err
}

// dnsStartLimit bounds the syncer's start as the DNS server sees it (dnsStart): a tenant that
// cannot be started (its kubeconfig Secret missing, its VirtualCluster unreadable) must not
// keep queries from strangers SERVFAIL for ever. The VirtualCluster worker starts the tenants
// one by one and waits up to a minute for each one's caches: a few slow ones take minutes.
const dnsStartLimit = 5 * time.Minute

// dnsStart is the syncer's start as the DNS server sees it (Config.Starting): until the super
// caches have synced and every VirtualCluster served then has been started once (vcs has it),
// an address no known tenant pod has may be a tenant pod's, so a query from it gets SERVFAIL,
// which resolvers retry, rather than REFUSED, which ends the lookup; until dnsStartLimit at most.
// Its zero value is started.
type dnsStart struct {
	mu       sync.Mutex
	deadline time.Time       // zero: started
	pending  map[string]bool // VirtualClusters not started yet; nil before the caches synced
}

// begin marks the syncer starting, until deadline at most.
func (d *dnsStart) begin(deadline time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadline, d.pending = deadline, nil
}

// expect is called once the caches have synced, with the VirtualClusters to start.
func (d *dnsStart) expect(keys []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = map[string]bool{}
	for _, k := range keys {
		d.pending[k] = true
	}
	d.done()
}

// started notes that VirtualCluster key has been started, or is none to start.
func (d *dnsStart) started(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending != nil {
		delete(d.pending, key)
		d.done()
	}
}

// done ends the start when nothing is pending any more; d.mu held.
func (d *dnsStart) done() {
	if len(d.pending) == 0 {
		d.deadline = time.Time{}
	}
}

// starting reports whether the syncer is still starting at now.
func (d *dnsStart) starting(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return now.Before(d.deadline)
}

// dnsTenant is the tenant view for a query from ip: the tenant whose super pod has ip, served or
// still syncing its caches (startedTenant). An address that two tenants' pods claim (one just
// gone, its IP reused) answers nobody. An address of one cached pod is that pod's tenant's even
// if its node has just freed it and given it to another pod: a kubelet stops the pod's sandbox,
// which frees the IP, before it reports the pod terminal or has it deleted (SyncTerminatingPod),
// and nothing in the pod says so sooner; a terminating pod runs, and resolves names, until its
// containers exit or its grace period ends, so it is not refused (docs/tenant-pods.md).
func (s *Syncer) dnsTenant(ip netip.Addr) (*tenantdns.Tenant, bool) {
	objs, _ := s.superIndex[kindPod].ByIndex(indexPodIP, ip.String())
	var found *tenant
	var syncing bool
	var askers []*corev1.Pod
	for _, obj := range objs {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			continue
		}
		key := p.Labels[ownership.LabelClusterKey]
		if _, ok := mapping.TenantNamespace(p, key); !ok {
			continue
		}
		t, serving := s.startedTenant(key)
		if t == nil || (found != nil && found != t) {
			return nil, false
		}
		found, syncing = t, !serving
		askers = append(askers, p)
	}
	if found == nil {
		return nil, false
	}
	var asker *corev1.Pod // the super pod asking, when one alone has ip
	if len(askers) == 1 {
		asker = askers[0]
	}
	return &tenantdns.Tenant{Key: found.key, Domain: found.settings.Load().domain, Service: found.dnsService, Namespace: found.dnsNamespace,
		ServiceByIP:   func(ip netip.Addr) (string, string, bool) { return s.dnsServiceByIP(found, ip) },
		EndpointsByIP: found.dnsEndpointsByIP,
		Self:          found.dnsSelf(asker), Nameserver: s.dnsNameserver(), Syncing: syncing}, true
}

// startedTenant is the tenant of cluster key that is served, or else (serving false) one started
// whose caches have not synced yet: vcs has it, tenants not yet (or no more, after it failed to
// sync). Its pods get SERVFAIL for their domain's names, which they retry, rather than REFUSED,
// which ends a lookup. Nil when there is neither.
func (s *Syncer) startedTenant(key string) (t *tenant, serving bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if t := s.tenants[key]; t != nil {
		return t, true
	}
	for _, t := range s.vcs {
		if t.key == key {
			return t, false
		}
	}
	return nil, false
}

// dnsClusterAddress reports whether ip is the ClusterIP of a super Service or the IP of a super
// pod of vnest's (any tenant's): a reverse query for it that the asking tenant's Services do
// not answer gets NXDOMAIN, since the super cluster's DNS would name another tenant's objects.
func (s *Syncer) dnsClusterAddress(ip netip.Addr) bool {
	svcs, _ := s.superIndex[kindService].ByIndex(indexServiceIP, ip.String())
	pods, _ := s.superIndex[kindPod].ByIndex(indexPodIP, ip.String())
	return len(svcs) > 0 || len(pods) > 0
}

// dnsSelf is the tenant pod of super pod sp (nil: none) by its own name, when it has a
// subdomain: the name its kubelet would write into its /etc/hosts (the super pod goes down
// without the subdomain, see podDNS). Nil when the pod has no subdomain or is not in the cache.
func (t *tenant) dnsSelf(sp *corev1.Pod) *tenantdns.Pod {
	if sp == nil {
		return nil
	}
	ns, _ := mapping.TenantNamespace(sp, t.key)
	p, err := t.pods.Pods(ns).Get(sp.Name)
	if err != nil || p.UID != mapping.TenantUID(sp) || p.Spec.Subdomain == "" {
		return nil
	}
	ips := podIPs(sp)
	if len(ips) == 0 {
		ips = []string{sp.Status.PodIP}
	}
	return &tenantdns.Pod{Namespace: ns, Hostname: podHostname(p), Subdomain: p.Spec.Subdomain, IPs: ips}
}

// podHostname is a pod's hostname as its kubelet sets it: spec.hostname, else the pod's name,
// cut to 63 characters without a trailing dash or dot.
func podHostname(p *corev1.Pod) string {
	h := cmp.Or(p.Spec.Hostname, p.Name)
	if len(h) > validation.DNS1123LabelMaxLength {
		h = strings.TrimRight(h[:validation.DNS1123LabelMaxLength], "-.")
	}
	return h
}

// dnsService is tenant Service ns/name as the DNS server answers it, from the caches.
func (t *tenant) dnsService(ns, name string) (tenantdns.Service, bool) {
	svc, err := t.services.Services(ns).Get(name)
	if err != nil {
		return tenantdns.Service{}, false
	}
	ep, _ := t.endpoints.Endpoints(ns).Get(name)
	ip := t.superClusterIP(ns, name)
	if isTenantAPIService(ns, name) && ip == "" {
		// The super copy of the tenant's kubernetes Service (port 443 to the tenant apiserver,
		// as in any cluster) is not there (yet): the tenant apiserver's own address, where
		// KUBERNETES_SERVICE_HOST points (podenv.go), though at its own port.
		if m, ok := masterService(ep); ok {
			ip = m.Spec.ClusterIP
		}
	}
	return dnsServiceOf(svc, ep, ip), true
}

// dnsNamespace reports whether tenant namespace ns exists, from the cache.
func (t *tenant) dnsNamespace(ns string) bool {
	_, err := t.namespaces.Get(ns)
	return err == nil
}

// dnsServiceByIP is the tenant Service (namespace, name) whose super Service has ClusterIP ip,
// for reverse lookups: a super Service of tenant t (indexTenant; the ownership check gives the
// tenant namespace) with ip among its cluster IPs.
func (s *Syncer) dnsServiceByIP(t *tenant, ip netip.Addr) (ns, name string, ok bool) {
	objs, err := s.superIndex[kindService].ByIndex(indexTenant, t.key)
	if err != nil {
		return "", "", false
	}
	for _, o := range objs {
		ss, isSvc := o.(*corev1.Service)
		if !isSvc {
			continue
		}
		ips := append([]string{ss.Spec.ClusterIP}, ss.Spec.ClusterIPs...)
		if !slices.ContainsFunc(ips, func(c string) bool { a, err := netip.ParseAddr(c); return err == nil && a == ip }) {
			continue
		}
		if tns, ok := mapping.TenantNamespace(ss, t.key); ok {
			return tns, ss.Name, true
		}
	}
	return "", "", false
}

// dnsEndpointsByIP is where ip is a ready endpoint address of a tenant Service, for reverse
// lookups, from the tenant's own Endpoints (indexEndpointIP) only: the names are the tenant's,
// whoever's pod the address is. Endpoints of no Service (yet) name nothing, as their names do
// not resolve.
func (t *tenant) dnsEndpointsByIP(ip netip.Addr) []tenantdns.ServiceEndpoint {
	objs, err := t.index[kindEndpoints].ByIndex(indexEndpointIP, ip.String())
	if err != nil {
		return nil
	}
	var out []tenantdns.ServiceEndpoint
	for _, o := range objs {
		ep, ok := o.(*corev1.Endpoints)
		if !ok {
			continue
		}
		if svc, err := t.services.Services(ep.Namespace).Get(ep.Name); err != nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				if addr, err := netip.ParseAddr(a.IP); err == nil && addr == ip {
					out = append(out, tenantdns.ServiceEndpoint{Namespace: ep.Namespace, Service: ep.Name,
						Endpoint: tenantdns.Endpoint{IP: a.IP, Hostname: a.Hostname}})
				}
			}
		}
	}
	return out
}

// superClusterIP is the ClusterIP of the super Service of tenant Service ns/name: the address
// pods reach it on. Empty when there is none (yet) or it is not the tenant's.
func (t *tenant) superClusterIP(ns, name string) string {
	ss, err := t.superSvcs.Services(mapping.SuperNamespace(t.key, ns)).Get(name)
	if err != nil || !mapping.OwnedByTenant(ss, t.key, ns) {
		return ""
	}
	return ss.Spec.ClusterIP
}

// dnsServiceOf is what DNS answers for tenant Service svc with Endpoints ep (may be nil) and
// super ClusterIP clusterIP: the super ClusterIP, or for a headless Service the ready addresses.
func dnsServiceOf(svc *corev1.Service, ep *corev1.Endpoints, clusterIP string) tenantdns.Service {
	out := tenantdns.Service{Headless: svc.Spec.ClusterIP == corev1.ClusterIPNone}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		out.ExternalName = svc.Spec.ExternalName
		return out
	}
	if !out.Headless && clusterIP != corev1.ClusterIPNone {
		out.ClusterIP = clusterIP
		for _, p := range svc.Spec.Ports {
			out.Ports = append(out.Ports, tenantdns.Port{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port})
		}
	}
	if ep == nil {
		return out
	}
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			out.Endpoints = append(out.Endpoints, tenantdns.Endpoint{IP: a.IP, Hostname: a.Hostname})
		}
		if out.Headless {
			for _, p := range ss.Ports {
				if !slices.ContainsFunc(out.Ports, func(x tenantdns.Port) bool { return x.Name == p.Name && x.Protocol == string(p.Protocol) }) {
					out.Ports = append(out.Ports, tenantdns.Port{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port})
				}
			}
		}
	}
	return out
}

// Limits of a pod's dnsConfig the super apiserver validates (and a kubelet truncates to).
const (
	maxDNSNameservers = 3
	maxDNSSearches    = 32
	// maxDNSSearchChars bounds the search domains' length in all, with a space between two.
	maxDNSSearchChars = 2048
)

// podDNS points spec (a super pod's) at the tenant DNS server at nameserver, for a pod in tenant
// namespace ns of a tenant with domain: what a tenant kubelet would write into resolv.conf for
// dnsPolicy ClusterFirst (ClusterFirstWithHostNet), merged with the pod's own dnsConfig as the
// kubelet merges it, as dnsPolicy None. Pods that do not use cluster DNS (Default, None,
// ClusterFirst on the host network) keep their settings; so do all when nameserver is "".
// A pod on the host network asks from its node's address, which tells the DNS server no tenant
// (indexPodIP), so ClusterFirstWithHostNet becomes Default there: the node's resolver, as a
// kubelet gives a host-network pod without cluster DNS; it resolves no tenant Service names.
func podDNS(spec *corev1.PodSpec, ns, domain, nameserver string) {
	switch {
	case nameserver == "":
		return
	case spec.HostNetwork:
		if spec.DNSPolicy == corev1.DNSClusterFirstWithHostNet {
			spec.DNSPolicy = corev1.DNSDefault
		}
		return
	case spec.DNSPolicy == "" || spec.DNSPolicy == corev1.DNSClusterFirst || spec.DNSPolicy == corev1.DNSClusterFirstWithHostNet:
	default:
		return
	}
	cfg := &corev1.PodDNSConfig{
		Nameservers: []string{nameserver},
		Searches:    []string{ns + ".svc." + domain, "svc." + domain, domain},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
	}
	if own := spec.DNSConfig; own != nil {
		cfg.Nameservers = appendNew(cfg.Nameservers, own.Nameservers, maxDNSNameservers)
		cfg.Searches = fitSearches(appendNew(cfg.Searches, own.Searches, maxDNSSearches))
		for _, o := range own.Options { // the pod's own option of a name wins
			if i := slices.IndexFunc(cfg.Options, func(x corev1.PodDNSConfigOption) bool { return x.Name == o.Name }); i >= 0 {
				cfg.Options[i] = o
			} else {
				cfg.Options = append(cfg.Options, o)
			}
		}
	}
	spec.DNSPolicy = corev1.DNSNone
	spec.DNSConfig = cfg
	// A kubelet writes <hostname>.<subdomain>.<namespace>.svc.<domain> into the pod's
	// /etc/hosts: the super one would name the super namespace. The DNS server answers the
	// tenant's name to the pod instead (dnsSelf).
	spec.Subdomain = ""
}

// fitSearches is searches up to the last that keeps them within maxDNSSearchChars, as a kubelet
// cuts a pod's search line: the pod's own may take all 2048 characters, and the three of the
// tenant's domain come before them.
func fitSearches(searches []string) []string {
	n := -1 // no space before the first
	for i, s := range searches {
		if n += 1 + len(s); n > maxDNSSearchChars {
			return searches[:i]
		}
	}
	return searches
}

// dnsCut is what of one line of a tenant pod's own dnsConfig, its nameservers or its search
// domains, the super pod goes without, and that line as the super pod has it.
type dnsCut struct {
	omitted, applied []string
}

// dnsOmitted is what of tenant pod tp's own dnsConfig its super pod sp goes without: the
// nameservers podDNS cut to keep within maxDNSNameservers (the tenant's DNS server first) and
// the search domains it cut to keep within maxDNSSearches and maxDNSSearchChars (the tenant's
// three first), as a kubelet cuts them. The pod's own that sp has anyway (the tenant's DNS
// server, one of the tenant's domains) are not omitted; a pod podDNS leaves alone keeps its
// dnsConfig, so nothing of it is.
func dnsOmitted(tp, sp *corev1.Pod) (nameservers, searches dnsCut) {
	var own, applied corev1.PodDNSConfig
	if tp.Spec.DNSConfig != nil {
		own = *tp.Spec.DNSConfig
	}
	if sp.Spec.DNSConfig != nil {
		applied = *sp.Spec.DNSConfig
	}
	return cutOf(own.Nameservers, applied.Nameservers), cutOf(own.Searches, applied.Searches)
}

// cutOf is the items of own that applied goes without.
func cutOf(own, applied []string) dnsCut {
	c := dnsCut{applied: applied}
	for _, s := range own {
		if !slices.Contains(applied, s) && !slices.Contains(c.omitted, s) {
			c.omitted = append(c.omitted, s)
		}
	}
	return c
}

// reasonDNSConfigForming is a kubelet's reason for the Warning event on a pod whose DNS settings
// it cut (k8s.io/kubernetes/pkg/kubelet/network/dns).
const reasonDNSConfigForming = "DNSConfigForming"

// recordDNSOmitted tells the tenant, once the super cluster has created super pod sp for tenant
// pod tp, that some of tp's own nameservers or search domains were left out (dnsOmitted), with
// the Warning events a kubelet records when it cuts those lines, nameservers first as it forms
// them. A pod's dnsConfig never changes after its creation, so the tenant pod gets them once per
// super pod, not at every sync.
func recordDNSOmitted(ctx context.Context, t *tenant, tp, sp *corev1.Pod) {
	nameservers, searches := dnsOmitted(tp, sp)
	for _, line := range []struct {
		name    string
		cut     dnsCut
		message string // a kubelet's, before the applied line
	}{
		{"nameserver", nameservers, "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: "},
		{"search", searches, "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: "},
	} {
		if len(line.cut.omitted) == 0 {
			continue
		}
		klog.FromContext(ctx).V(2).Info("DNS limits exceeded; some of the pod's own DNS settings omitted", "pod", klog.KObj(tp), "line", line.name, "omitted", line.cut.omitted)
		if t.recorder != nil {
			t.recorder.Event(tp, corev1.EventTypeWarning, reasonDNSConfigForming, line.message+strings.Join(line.cut.applied, " "))
		}
	}
}

// appendNew appends the items of add not in list yet, up to max items in all.
func appendNew(list, add []string, limit int) []string {
	for _, a := range add {
		if len(list) >= limit {
			break
		}
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	return list
}
