// Package dns is the tenants' cluster DNS: a nameserver, run inside the syncer, that answers
// each tenant pod with the Services of ITS tenant only, and forwards names outside the tenant's
// cluster domain to upstream nameservers.
//
// The asking tenant is the one whose super pod has the query's source IP (Config.Tenant, which
// the syncer answers from its super pod cache); a source that is no tenant pod is REFUSED, so the
// server is neither an open resolver nor a way to read one tenant's names from another. A
// query from an unknown source first waits (Config.UnknownSourceWait, 3 s) for a pod to claim
// the address: containers start before their kubelet reports the pod's IP. While the caller is
// starting (Config.Starting: its caches of pods syncing, tenants not all started yet), the
// query then gets SERVFAIL, which resolvers retry, rather than REFUSED: it may come from a pod
// not known yet. While the tenant's caches sync (Tenant.Syncing), names in its domain are
// SERVFAIL: a name missing from them may exist, and resolvers retry a SERVFAIL where they would
// cache an NXDOMAIN.
//
// Names, in the tenant's domain D (spec.clusterDomain):
//
//	<svc>.<ns>.svc.D         A: the Service's address (a ClusterIP Service: the ClusterIP of its
//	                         super Service; headless: its ready endpoint addresses); CNAME for
//	                         ExternalName Services, with the target's records (Server.chase)
//	<host>.<svc>.<ns>.svc.D  A: the ready endpoint addresses of <svc> with hostname <host>
//	                         (StatefulSet pods, pods with hostname and subdomain)
//	_<port>._<proto>.<svc>.<ns>.svc.D   SRV for named ports
//	<reversed IP>.in-addr.arpa / ip6.arpa  PTR <svc>.<ns>.svc.D for a Service's ClusterIP;
//	                         else, as CoreDNS, <host>.<svc>.<ns>.svc.D for each Service the
//	                         address is a ready endpoint of (host: its hostname, or the IP with
//	                         dashes, and a 0 after a trailing dash: fd00--0; Tenant.EndpointsByIP);
//	                         other reverse names go upstream, but those of super cluster
//	                         addresses (Config.ClusterAddress: super Services, tenant pods) are
//	                         NXDOMAIN: the super cluster's DNS would name other tenants' objects
//
// Names in the super cluster's domain (Config.SuperDomain: itself and every name under it) that
// D does not hold are NXDOMAIN too rather than forwarded: the super cluster's DNS answers them
// from its own objects, every tenant's super Services under svc. and pods under pod.; when D is
// the super domain, D's own answers are the only ones. So is a forwarded name whose upstream
// answer names one (Server.namesSuper): the reverse name of a super cluster address
// ClusterAddress does not know, such as another tenant's control plane. An ExternalName's
// target in the super domain is not chased either.
//
// Other names in D are NXDOMAIN; D itself, svc.D, dns.D and <ns>.svc.D of an existing namespace
// (Tenant.Namespace) exist without records, as do found names asked for a type they have no
// records of (AAAA, say). D has an SOA record, with CoreDNS's values, and an NS record naming
// ns.dns.D, CoreDNS's name server, whose A record is the address pods ask (Tenant.Nameserver),
// given in the NS answer's additional section too; the server's own
// negative answers carry the SOA of the name's zone (D, in-addr.arpa., ip6.arpa.) in their
// authority section, as CoreDNS's do, for negative caching (RFC 2308). Answers live 5 s, as
// do negative ones (the SOA's minimum TTL).
//
// It owns no Kubernetes state and writes nothing: what a tenant's names resolve to comes from
// the Tenant the caller returns, and the pure Answer decides every reply.
package dns
