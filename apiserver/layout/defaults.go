package layout

// Defaults of `vnest apiserver` flags that the manager must agree with.
const (
	// DefaultServiceCIDR is the tenant's own Service range; its first
	// address is the ClusterIP of the tenant's `kubernetes` Service, which
	// the serving certificate must cover. It overlaps neither the local super
	// cluster's Services (10.96.0.0/16) nor its pods (10.244.0.0/16). More
	// ranges (for example the super cluster's, should the syncer copy
	// super-allocated ClusterIPs up) can be added at run time as ServiceCIDR
	// objects (networking.k8s.io/v1).
	DefaultServiceCIDR   = "10.32.0.0/16"
	DefaultClusterDomain = "cluster.local"
	DefaultSecurePort    = 6443
)
