package layout

// Defaults of `vnest apiserver` flags that the manager must agree with.
const (
	// DefaultServiceCIDR is the tenant's own Service range; its first
	// address is the ClusterIP of the tenant's `kubernetes` Service, which
	// the serving certificate must cover.
	DefaultServiceCIDR   = "10.32.0.0/16"
	DefaultClusterDomain = "cluster.local"
	DefaultSecurePort    = 6443
)
