package layout

// Defaults of `vnest apiserver` flags that the manager must agree with.
const (
	// DefaultServiceCIDR is the tenant's own Service range; its first
	// address is the ClusterIP of the tenant's `kubernetes` Service, which
	// the serving certificate must cover. It overlaps neither the local super
	// cluster's Services (10.96.0.0/16) nor its pods (10.244.0.0/16). A
	// tenant that takes its ClusterIPs from the syncer (--service-ip-allocator)
	// runs with the super cluster's range instead (manager
	// --tenant-service-cidr).
	DefaultServiceCIDR   = "10.32.0.0/16"
	DefaultClusterDomain = "cluster.local"
	DefaultSecurePort    = 6443
)

// ServiceAccountIssuer is the issuer of a tenant's service-account tokens
// when `vnest apiserver --service-account-issuer` is not given; the API
// audiences default to it. The syncer signs tenant tokens with it.
func ServiceAccountIssuer(clusterDomain string) string {
	return "https://kubernetes.default.svc." + clusterDomain
}
