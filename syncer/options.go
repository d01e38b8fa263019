package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vnest-dev/vnest/internal/securemetrics"
	"github.com/vnest-dev/vnest/internal/syncerlease"
	"github.com/vnest-dev/vnest/syncer/kubeletproxy"
)

// Options are the user-facing settings of `vnest syncer`.
type Options struct {
	// Kubeconfig of the super cluster; empty means $KUBECONFIG, then in-cluster, then
	// ~/.kube/config.
	Kubeconfig string
	// Workers is how many keys are reconciled at once, across all tenants.
	Workers int
	// WorkersPerTenant is the most of them one tenant's keys take at once, so that the others
	// stay free for the other tenants while one floods; 0 is half of Workers (at least 1), more
	// than Workers is all of them. The default, 2, keeps a flooding tenant's syncs from crowding
	// the super apiserver: in BenchmarkSyncer a quiet tenant's p99 under another's flood of 2,000
	// pods was 162–267 ms with 2 against 407–577 ms with 8 (four and three runs), with no loss
	// of throughput (docs/benchmarks.md).
	WorkersPerTenant int
	// Resync is the patrol period: every Resync each tenant's objects are compared on both
	// sides; drift is re-queued and orphans deleted.
	Resync time.Duration
	// HeartbeatPeriod is how often virtual nodes' condition heartbeats are refreshed.
	HeartbeatPeriod time.Duration
	// MetricsBindAddress serves Prometheus metrics on /metrics (and /healthz); "0" turns it off.
	MetricsBindAddress string
	// MetricsSecure serves the metrics address over HTTPS and lets a request through only when
	// the super cluster authenticates its bearer token (TokenReview) and authorizes its user to
	// get the path, a non-resource URL (SubjectAccessReview), as controller-runtime's secure
	// metrics do: the series name every tenant, and tenant pods reach the syncer's pod IP.
	MetricsSecure bool
	// MetricsCertDir holds the serving certificate of the secure metrics address, tls.crt and
	// tls.key, reloaded when they change; empty: a certificate signed by itself, made at start.
	MetricsCertDir string
	// Profiling serves Go's /debug/pprof/ handlers on the metrics address too, as the
	// Kubernetes components' --profiling does on theirs (behind the same checks when secure).
	Profiling bool
	// HealthProbeBindAddress serves /healthz over plain HTTP without authentication, for the
	// kubelet's probe, which carries no token; "0" turns it off.
	HealthProbeBindAddress string
	// QPS and Burst bound each client (the super cluster's and every tenant's).
	QPS   float32
	Burst int
	// KubeletProxyBindAddress (host:port) serves the kubelet API of virtual nodes, which makes
	// kubectl logs, exec, attach and port-forward work on tenant pods (package kubeletproxy);
	// empty turns it off.
	KubeletProxyBindAddress string
	// KubeletProxyAdvertiseAddress is the IP (or IP:port) tenant apiservers reach the kubelet
	// proxy on; virtual nodes carry it as their InternalIP and kubelet port.
	KubeletProxyAdvertiseAddress string
	// KubeletProxyMaxRequestsPerTenant bounds the requests (logs, exec, attach, port-forward)
	// one tenant has going through the kubelet proxy at once; more get 429 Too Many Requests.
	KubeletProxyMaxRequestsPerTenant int
	// KubeletProxyMaxRequests bounds the requests all tenants together have going through the
	// kubelet proxy at once.
	KubeletProxyMaxRequests int
	// DNSBindAddress (host:port) serves the tenants' cluster DNS (package dns); empty turns it
	// off, and pods keep the super cluster's DNS.
	DNSBindAddress string
	// DNSAdvertiseAddress is the IP tenant pods reach the DNS server on, at port 53: their
	// nameserver.
	DNSAdvertiseAddress string
	// LeaseNamespace and LeaseName are the syncer's heartbeat Lease in the super cluster
	// (lease.go), which the manager reads (its --syncer-lease-namespace and --syncer-lease-name
	// must name the same).
	LeaseNamespace, LeaseName string
	// LeaseDuration is the Lease's leaseDurationSeconds; the syncer renews it every quarter of it.
	LeaseDuration time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Workers:                16,
		WorkersPerTenant:       2,
		Resync:                 time.Minute,
		HeartbeatPeriod:        20 * time.Second,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		QPS:                    200,
		Burst:                  400,
		LeaseNamespace:         syncerlease.DefaultNamespace,
		LeaseName:              syncerlease.DefaultName,
		LeaseDuration:          syncerlease.DefaultDuration,

		KubeletProxyMaxRequestsPerTenant: kubeletproxy.DefaultMaxRequestsPerTenant,
		KubeletProxyMaxRequests:          kubeletproxy.DefaultMaxRequests,
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the super cluster (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Keys reconciled at once, shared fairly by all tenants")
	fs.IntVar(&o.WorkersPerTenant, "workers-per-tenant", o.WorkersPerTenant, "Most workers one tenant's keys take at once (one more for a new object or a deletion while the others hold updates; while other tenants have keys queued too, twice as many for a tenant with fewer queued than their mean, half and no extra one for a tenant with more), leaving the rest to the other tenants and the super cluster's capacity to them; 0 is half of --workers")
	fs.DurationVar(&o.Resync, "resync", o.Resync, "Patrol period: compare both sides of every tenant, re-queue drift, delete orphans")
	fs.DurationVar(&o.HeartbeatPeriod, "node-heartbeat-period", o.HeartbeatPeriod, "How often the heartbeat of virtual nodes in tenants is refreshed")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the Prometheus /metrics endpoint, e.g. :8080; 0 turns it off")
	securemetrics.AddFlags(fs, &o.MetricsSecure, &o.MetricsCertDir)
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "Serve Go's /debug/pprof/ handlers (CPU, heap, goroutine profiles) on the metrics address; needs --metrics-bind-address")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of /healthz, plain HTTP without authentication (for the kubelet's probe), like :8081; 0 turns it off")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Queries per second of each client (super cluster and every tenant)")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of each client (super cluster and every tenant)")
	fs.StringVar(&o.KubeletProxyBindAddress, "kubelet-proxy-bind-address", o.KubeletProxyBindAddress, "host:port of the kubelet proxy that serves logs/exec/attach/port-forward of tenant pods to tenant apiservers; empty turns it off")
	fs.StringVar(&o.KubeletProxyAdvertiseAddress, "kubelet-proxy-advertise-address", o.KubeletProxyAdvertiseAddress, "IP (or IP:port) tenant apiservers reach the kubelet proxy on; virtual nodes carry it as InternalIP and kubelet port")
	fs.IntVar(&o.KubeletProxyMaxRequestsPerTenant, "kubelet-proxy-max-requests-per-tenant", o.KubeletProxyMaxRequestsPerTenant, "Most requests (logs, exec, attach, port-forward) one tenant may have going through the kubelet proxy at once, streams included; more get 429 Too Many Requests")
	fs.IntVar(&o.KubeletProxyMaxRequests, "kubelet-proxy-max-requests", o.KubeletProxyMaxRequests, "Most requests (logs, exec, attach, port-forward) all tenants together may have going through the kubelet proxy at once, streams included (each open stream holds about 120 KB of the syncer's memory); more get 429 Too Many Requests")
	fs.StringVar(&o.DNSBindAddress, "dns-bind-address", o.DNSBindAddress, "host:port of the tenants' cluster DNS server (UDP and TCP), which answers each pod with its own tenant's Services; empty turns it off")
	fs.StringVar(&o.DNSAdvertiseAddress, "dns-advertise-address", o.DNSAdvertiseAddress, "IP tenant pods reach the DNS server on at port 53; super pods get it as their nameserver")
	fs.StringVar(&o.LeaseNamespace, "lease-namespace", o.LeaseNamespace, "Namespace of the syncer's heartbeat Lease in the super cluster (the syncer's own when it runs in a pod); the manager's --syncer-lease-namespace must be the same")
	fs.StringVar(&o.LeaseName, "lease-name", o.LeaseName, "Name of the syncer's heartbeat Lease, which the manager reads to tell a syncer that stopped; the manager's --syncer-lease-name must be the same")
	fs.DurationVar(&o.LeaseDuration, "lease-duration", o.LeaseDuration, "leaseDurationSeconds of the syncer's heartbeat Lease, renewed every quarter of it: the manager takes the syncer for stopped once it has not been renewed for this long (and a little more)")
}

// Validate reports every invalid option.
func (o *Options) Validate() error {
	var errs []error
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers must be at least 1, got %d", o.Workers))
	}
	if o.WorkersPerTenant < 0 {
		errs = append(errs, fmt.Errorf("--workers-per-tenant must be at least 0 (0 is half of --workers), got %d", o.WorkersPerTenant))
	}
	if o.Resync < time.Second {
		errs = append(errs, fmt.Errorf("--resync must be at least 1s, got %v", o.Resync))
	}
	if o.HeartbeatPeriod < time.Second {
		errs = append(errs, fmt.Errorf("--node-heartbeat-period must be at least 1s, got %v", o.HeartbeatPeriod))
	}
	if o.QPS <= 0 || o.Burst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive, got %v and %d", o.QPS, o.Burst))
	}
	errs = append(errs, o.validateMetrics()...)
	errs = append(errs, o.validateLease()...)
	if _, err := kubeletProxyEndpoint(o.KubeletProxyBindAddress, o.KubeletProxyAdvertiseAddress); err != nil {
		errs = append(errs, err)
	}
	if o.KubeletProxyMaxRequestsPerTenant < 1 {
		errs = append(errs, fmt.Errorf("--kubelet-proxy-max-requests-per-tenant must be at least 1, got %d", o.KubeletProxyMaxRequestsPerTenant))
	}
	if o.KubeletProxyMaxRequests < 1 {
		errs = append(errs, fmt.Errorf("--kubelet-proxy-max-requests must be at least 1, got %d", o.KubeletProxyMaxRequests))
	}
	if _, err := dnsAdvertiseIP(o.DNSBindAddress, o.DNSAdvertiseAddress); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateMetrics reports the metrics options that need another one.
func (o *Options) validateMetrics() []error {
	var errs []error
	metricsOff := addressOff(o.MetricsBindAddress)
	if o.Profiling && metricsOff {
		errs = append(errs, errors.New("--profiling serves on the metrics address: set --metrics-bind-address too"))
	}
	return append(errs, securemetrics.Validate(metricsOff, o.MetricsSecure, o.MetricsCertDir)...)
}

// addressOff reports whether a bind address turns its server off: "0" or empty.
func addressOff(addr string) bool { return addr == "" || addr == "0" }

// validateLease reports what is wrong with the heartbeat Lease's options.
func (o *Options) validateLease() []error {
	var errs []error
	for _, msg := range validation.IsDNS1123Label(o.LeaseNamespace) {
		errs = append(errs, fmt.Errorf("invalid --lease-namespace %q: %s", o.LeaseNamespace, msg))
	}
	for _, msg := range validation.IsDNS1123Subdomain(o.LeaseName) {
		errs = append(errs, fmt.Errorf("invalid --lease-name %q: %s", o.LeaseName, msg))
	}
	if o.LeaseDuration < 4*time.Second {
		errs = append(errs, fmt.Errorf("--lease-duration must be at least 4s (it is renewed every quarter of it), got %v", o.LeaseDuration))
	}
	return errs
}

// workersPerTenant is the per-tenant limit of the fair queue: WorkersPerTenant (at most
// Workers), or half of Workers when it is 0.
func (o *Options) workersPerTenant() int {
	if o.WorkersPerTenant > 0 {
		return min(o.WorkersPerTenant, o.Workers)
	}
	return max(1, o.Workers/2)
}

// completedOptions are validated options with the super cluster's client config loaded; only
// they can make a Syncer, so nothing runs half-configured.
type completedOptions struct {
	*Options
	super   *rest.Config
	kubelet kubeletEndpoint // zero: no kubelet proxy
	dns     string          // the nameserver of tenant pods; "": no tenant DNS
}

// Complete validates the options and loads the super cluster's client config.
func (o *Options) Complete() (*completedOptions, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the super cluster's kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	cfg.UserAgent = "vnest-syncer"
	cfg.WarningHandler = rest.NoWarnings{} // v1 Endpoints is deprecated; the syncer still serves it
	// Validated above.
	kubelet, _ := kubeletProxyEndpoint(o.KubeletProxyBindAddress, o.KubeletProxyAdvertiseAddress)
	dns, _ := dnsAdvertiseIP(o.DNSBindAddress, o.DNSAdvertiseAddress)
	return &completedOptions{Options: o, super: cfg, kubelet: kubelet, dns: dns}, nil
}

// Run completes the options and runs the syncer until ctx ends.
func Run(ctx context.Context, o *Options) error {
	c, err := o.Complete()
	if err != nil {
		return err
	}
	s, err := New(c)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// protobuf is a copy of cfg that sends and accepts protobuf, as the Kubernetes components do:
// an apiserver encodes a pod for a watch or a response in a fraction of the CPU JSON costs, and
// the syncer watches and writes every tenant pod on both sides. For clientsets of built-in kinds
// only; the dynamic client (VirtualClusters) sets JSON itself.
func protobuf(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return c
}
