package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/keylimit"
)

// Config is what a Server answers from.
type Config struct {
	// Tenant returns the tenant whose pod has address ip; ok is false when no tenant pod has it.
	Tenant func(ip netip.Addr) (t *Tenant, ok bool)
	// Upstreams (host:port) answer names outside a tenant's domain, tried in order.
	Upstreams []string
	// ClusterAddress reports whether ip is an address in the super cluster whose name is none
	// of the asking tenant's to learn: a super Service's ClusterIP or a tenant pod's IP. A
	// reverse query for it that the tenant's own Services do not answer gets NXDOMAIN: the
	// upstreams (the super cluster's DNS) would name another tenant's Service or pod. Nil: none.
	ClusterAddress func(ip netip.Addr) bool
	// SuperDomain is the super cluster's domain when the upstreams are its DNS. Names under it
	// (itself included) that the tenant's domain does not hold get NXDOMAIN rather than going
	// upstream, which answers them from the super cluster's objects: every tenant's super
	// Services under svc.<SuperDomain>, and its pods under pod.<SuperDomain> (with CoreDNS's
	// "pods verified", <dashed IP>.<super namespace>.pod.<SuperDomain> tells whether a pod of
	// that address is in that namespace). Empty: none.
	SuperDomain string
	// ForwardTimeout bounds one exchange with an upstream; zero means 2 s.
	ForwardTimeout time.Duration
	// UnknownSourceWait is how long a query from an address no tenant pod has (yet) waits for
	// one to claim it before it is refused: a pod's containers start, and resolve names, before
	// its kubelet reports the pod's IP. Zero means 3 s; negative, no wait.
	UnknownSourceWait time.Duration
	// Starting reports whether the caller is still starting, so that an address no tenant pod
	// has may yet be one's: its caches of pods have not synced, or it has not started serving
	// every tenant yet. A query from an unknown source then gets SERVFAIL after the wait, which
	// resolvers retry, rather than REFUSED, which ends the lookup (glibc NO_RECOVERY, musl
	// EAI_FAIL); it is answered nothing either way. It must turn false for good once the caller
	// has started, or after a bounded time. Nil: never starting.
	Starting func() bool
}

// maxWaiting bounds the queries waiting for their source to become known; more are refused
// at once, so a flood from addresses that are no pods costs little. Measured
// (BenchmarkWaitingQueryBytes, docs/benchmarks.md, session 37), a waiting query costs about
// 0.7 KB of heap and a goroutine with a 4 KB stack: 1.2 MiB at the limit, which is the whole
// server's, not a tenant's (such a query has no tenant yet).
const maxWaiting = 256

// maxForwarding bounds the upstream exchanges of one tenant's pods going at a time. Each holds a
// goroutine, a socket and a reply buffer until the upstream answers or ForwardTimeout passes
// (per upstream), so a pod asking for names whose servers never answer would pile them up
// without bound and take the syncer's memory and file descriptors from every tenant. More get
// SERVFAIL at once; a tenant at its limit holds up no other tenant's. Measured
// (BenchmarkForwardedQueryBytes, docs/benchmarks.md, session 37), a UDP query at the upstreams
// costs about 1.5 KB of heap and a goroutine with an 8 KB stack, besides its socket: about
// 2.4 MiB for a tenant at the limit.
const maxForwarding = 256

// Server is the tenants' nameserver. Make it with New, start it with Start.
type Server struct {
	cfg     Config
	log     klog.Logger
	waiting chan struct{} // a slot per query waiting in tenantOf

	forwarding *keylimit.Limit // upstream exchanges going, by Tenant.Key
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = 2 * time.Second
	}
	if cfg.UnknownSourceWait == 0 {
		cfg.UnknownSourceWait = 3 * time.Second
	}
	return &Server{cfg: cfg, log: klog.Background(), waiting: make(chan struct{}, maxWaiting),
		forwarding: keylimit.New(maxForwarding)}
}

// Upstreams reads the nameservers of a resolv.conf file as host:port.
func Upstreams(resolvConf string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading the upstream nameservers: %w", err)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

// SuperDomain is the cluster domain D of a resolv.conf file a kubelet wrote for a pod of
// cluster DNS: D of its first search domain svc.D; "" when it has none.
func SuperDomain(resolvConf string) (string, error) {
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return "", fmt.Errorf("reading the search domains: %w", err)
	}
	for _, d := range cc.Search {
		if rest, ok := strings.CutPrefix(strings.ToLower(dns.Fqdn(d)), "svc."); ok && rest != "." {
			return rest, nil
		}
	}
	return "", nil
}

// Start serves DNS over UDP and TCP on addr (host:port; port 0 picks one, the same for both)
// until ctx ends. It returns once both listen, with the UDP address.
func (s *Server) Start(ctx context.Context, addr string) (net.Addr, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("serving DNS on %s/udp: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("serving DNS on %s/tcp: %w", addr, err)
	}
	logger := klog.FromContext(ctx)
	s.log = logger
	servers := []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: l, Handler: s}}
	for _, srv := range servers {
		go func() {
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				logger.Error(err, "DNS server stopped")
			}
		}()
	}
	go func() {
		<-ctx.Done()
		for _, srv := range servers {
			if err := srv.Shutdown(); err != nil {
				// Not started yet: close the sockets ourselves.
				_ = pc.Close()
				_ = l.Close()
			}
		}
	}()
	logger.Info("Serving tenant DNS", "address", pc.LocalAddr().String())
	return pc.LocalAddr(), nil
}

// ServeDNS answers one query: REFUSED unless its source is a tenant pod (or becomes one within
// UnknownSourceWait; SERVFAIL instead while the caller is Starting), else from the tenant's names
// or, outside its domain, from the upstreams.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m.SetRcode(r, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	t, ok := s.tenantOf(w.RemoteAddr())
	if !ok {
		m.SetRcode(r, s.unknownSourceRcode())
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	reply := Answer(q, t)
	if reply.Forward && s.superName(q.Name) {
		reply = negative(dns.RcodeNameError, strings.ToLower(dns.Fqdn(q.Name)), strings.ToLower(dns.Fqdn(t.Domain)))
	}
	if reply.Forward {
		s.forward(w, r, m, t)
		return
	}
	if reply.Rcode == dns.RcodeSuccess && q.Qtype != dns.TypeCNAME && len(reply.Answer) == 1 {
		if c, ok := reply.Answer[0].(*dns.CNAME); ok { // an ExternalName Service
			reply.Answer = append(reply.Answer, s.chase(t, c.Target, q.Qtype, w.RemoteAddr().Network(), maxChase)...)
		}
	}
	m.Authoritative = true
	m.Rcode = reply.Rcode
	m.Answer = reply.Answer
	m.Ns = reply.Ns
	m.Extra = reply.Extra
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			m.SetEdns0(opt.UDPSize(), false)
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// maxChase bounds how many CNAMEs in a row chase follows (ExternalName Services naming each
// other).
const maxChase = 8

// chase is the records of type qtype that target, the CNAME target of an ExternalName Service,
// has: the tenant's own when it is in the tenant's domain, else the upstreams'. CoreDNS adds
// them to the CNAME too: a stub resolver (glibc's, musl's, Go's) does not follow a CNAME that
// comes alone, so a client of the Service would find no address. Nothing when the target has
// none, is a name of the super cluster's (superName), or the upstreams do not answer.
func (s *Server) chase(t *Tenant, target string, qtype uint16, network string, depth int) []dns.RR {
	if depth == 0 {
		return nil
	}
	q := dns.Question{Name: dns.Fqdn(target), Qtype: qtype, Qclass: dns.ClassINET}
	reply := Answer(q, t)
	switch {
	case reply.Forward && s.superName(q.Name):
		return nil
	case reply.Forward:
		r := new(dns.Msg)
		r.SetQuestion(q.Name, qtype)
		if resp, err := s.exchange(t.Key, r, network); err == nil && resp.Rcode == dns.RcodeSuccess && !s.namesSuper(resp) {
			return resp.Answer
		}
		return nil
	case reply.Rcode != dns.RcodeSuccess:
		return nil
	}
	if len(reply.Answer) == 1 {
		if c, ok := reply.Answer[0].(*dns.CNAME); ok {
			return append(reply.Answer, s.chase(t, c.Target, qtype, network, depth-1)...)
		}
	}
	return reply.Answer
}

// superName reports whether name, outside the tenant's domain, is one the upstreams would
// answer from the super cluster's objects, which are not the tenant's: the reverse name of a
// ClusterAddress, or a name in the super cluster's domain (inSuperDomain). A tenant whose
// domain is the super domain never asks: its own zone answers every name in it.
func (s *Server) superName(name string) bool {
	name = strings.ToLower(dns.Fqdn(name))
	if ip, ok := reverseAddr(name); ok {
		return s.cfg.ClusterAddress != nil && s.cfg.ClusterAddress(ip.Unmap())
	}
	return s.inSuperDomain(name)
}

// inSuperDomain reports whether name is SuperDomain or under it: a super cluster Service or
// endpoint (svc.), pod (pod.), or any other name the super cluster's DNS serves there.
func (s *Server) inSuperDomain(name string) bool {
	return s.cfg.SuperDomain != "" && dns.IsSubDomain(strings.ToLower(dns.Fqdn(s.cfg.SuperDomain)), strings.ToLower(dns.Fqdn(name)))
}

// namesSuper reports whether an upstream's reply names a name of the super cluster's domain
// (inSuperDomain), as owner or target of a record. ClusterAddress knows only vnest's own super
// objects: the reverse name of an address it does not know, such as another tenant's control
// plane (the manager's Service and pods, which carry no ownership labels) or a Service of the
// super cluster's own, would otherwise come back with the super cluster's name of it, and an
// outside name may alias one.
func (s *Server) namesSuper(m *dns.Msg) bool {
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			names := []string{rr.Header().Name}
			switch rr := rr.(type) {
			case *dns.PTR:
				names = append(names, rr.Ptr)
			case *dns.CNAME:
				names = append(names, rr.Target)
			case *dns.DNAME:
				names = append(names, rr.Target)
			case *dns.SRV:
				names = append(names, rr.Target)
			}
			if slices.ContainsFunc(names, s.inSuperDomain) {
				return true
			}
		}
	}
	return false
}

func (s *Server) tenantOf(a net.Addr) (*Tenant, bool) {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	}
	if !ip.IsValid() {
		return nil, false
	}
	ip = ip.Unmap()
	if t, ok := s.cfg.Tenant(ip); ok || s.cfg.UnknownSourceWait <= 0 {
		return t, ok
	}
	select {
	case s.waiting <- struct{}{}:
		defer func() { <-s.waiting }()
	default:
		return nil, false
	}
	for deadline := time.Now().Add(s.cfg.UnknownSourceWait); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if t, ok := s.cfg.Tenant(ip); ok {
			return t, true
		}
	}
	return nil, false
}

// unknownSourceRcode is the answer to a query whose source no tenant pod has: SERVFAIL while
// the caller is starting (Config.Starting), asked once the wait is over, else REFUSED.
func (s *Server) unknownSourceRcode() int {
	if s.cfg.Starting != nil && s.cfg.Starting() {
		return dns.RcodeServerFailure
	}
	return dns.RcodeRefused
}

// forward relays r to the upstreams over the transport it came on; SERVFAIL (in m) when none
// answers in time, and NXDOMAIN when the reply names a name of the super cluster's (namesSuper),
// with the SOA of the name's zone when it is a reverse name.
func (s *Server) forward(w dns.ResponseWriter, r, m *dns.Msg, t *Tenant) {
	network := "udp"
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		network = "tcp"
	}
	resp, err := s.exchange(t.Key, r, network)
	if err != nil {
		s.log.V(4).Info("No upstream nameserver answered", "name", r.Question[0].Name, "err", err)
		m.SetRcode(r, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
		return
	}
	if s.namesSuper(resp) {
		reply := negative(dns.RcodeNameError, strings.ToLower(dns.Fqdn(r.Question[0].Name)), strings.ToLower(dns.Fqdn(t.Domain)))
		m.Authoritative = true
		m.Rcode, m.Ns = reply.Rcode, reply.Ns
		_ = w.WriteMsg(m)
		return
	}
	resp.Id = r.Id
	_ = w.WriteMsg(resp)
}

// exchange asks the upstreams r over network ("udp" or "tcp"), in order, and returns the first
// reply; an error without asking when tenant has maxForwarding exchanges going.
func (s *Server) exchange(tenant string, r *dns.Msg, network string) (*dns.Msg, error) {
	if !s.forwarding.Acquire(tenant) {
		return nil, fmt.Errorf("tenant %q has %d queries at the upstreams already", tenant, s.forwarding.Max())
	}
	defer s.forwarding.Release(tenant)
	c := &dns.Client{Net: network, Timeout: s.cfg.ForwardTimeout}
	var errs []error
	for _, up := range s.cfg.Upstreams {
		resp, _, err := c.Exchange(r, up)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, errors.New("no upstream nameservers")
	}
	return nil, fmt.Errorf("no upstream nameserver answered: %w", errors.Join(errs...))
}
