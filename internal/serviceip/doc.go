// Package serviceip is the protocol between a tenant apiserver and the allocator of its
// Service ClusterIPs (the syncer): one JSON request and answer, and the reservation annotation
// the allocator puts on the super Service it creates ahead of the tenant one.
//
// A tenant Service's ClusterIP must equal its super Service's, so that service environment
// variables, DNS answers and kube-proxy agree. The super cluster's allocator chooses among all
// its ServiceCIDRs (at random since 1.35), so handing each tenant a partition of the super range
// is unsafe. Instead the tenant apiserver asks first (an admission step on Service CREATE, see
// apiserver/serviceipadmission): the allocator creates the super Service, the super cluster
// allocates, and the tenant Service is created with the IPs of the answer.
//
// It must stay free of clients and heavy imports: the apiserver and the syncer both link it.
package serviceip
