package apiserver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	netutils "k8s.io/utils/net"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/serviceip"
)

// Defaults of the flags.
const (
	// DefaultEtcdServer is etcd's own default client URL. The service
	// range, cluster domain and port defaults are in package layout, which
	// the manager shares.
	DefaultEtcdServer = "http://127.0.0.1:2379"
	// DefaultMemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT):
	// none. An idle tenant's live heap alone is ~100 MiB; a limit near it
	// makes the GC run back to back (measured: 120Mi -> 125% CPU at idle).
	DefaultMemoryLimit = "0"
	// DefaultStartMemoryLimit is the Go soft memory limit from process start
	// until the control plane is ready (see setMemoryLimits): the GC then
	// runs often enough during start-up that its garbage does not stay
	// spread among what lives on, and an idle tenant keeps less
	// (BenchmarkIdleControlPlane: 150Mi ~12 MiB less than none, 100Mi ~8 MiB
	// less again). An empty tenant's start-up stays under it;
	// for one with much data the limit follows the live heap (followLiveHeap).
	DefaultStartMemoryLimit = "100Mi"
	// DefaultGCPercent is the Go GC target (GOGC) once the control plane
	// is ready, while the process allocates little; start-up runs with Go's
	// default of 100.
	DefaultGCPercent = 25
	// DefaultBusyGCPercent is the GC target while the control plane is busy
	// (see gcTuner): at 25 a busy tenant spends a quarter of its CPU in GC.
	DefaultBusyGCPercent = 100
	// DefaultReadyMaxProcs is GOMAXPROCS once the control plane is ready (see
	// limitProcs): one tenant then runs Go code on one core at a time, and its
	// bursts leave the other cores to the rest of the host.
	DefaultReadyMaxProcs = 1
)

// Options are the user-facing settings of `vnest apiserver`. The flag names
// follow kube-apiserver's where there is one.
type Options struct {
	// StateDir holds the kubeconfigs the process writes and, unless PKIDir
	// is set, the PKI files.
	StateDir string
	// PKIDir holds the PKI files (see package layout); missing ones
	// are created. Empty means StateDir. Point it at a read-only Secret
	// mount when every file is provided.
	PKIDir string

	EtcdServers  []string
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string
	// EtcdPrefix is the tenant's key prefix, for example /vnest/tenants/<key>.
	EtcdPrefix string
	// EtcdCompactionInterval is how often this apiserver compacts etcd; 0
	// leaves compaction to whoever owns the shared etcd (compaction is
	// etcd-wide and needs a key outside the tenant's prefix).
	EtcdCompactionInterval time.Duration

	BindAddress           string
	SecurePort            int
	AdvertiseAddress      string
	ServiceClusterIPRange string
	ClusterDomain         string
	// ServiceAccountIssuer defaults to https://kubernetes.default.svc.<cluster-domain>.
	ServiceAccountIssuer string
	// ExtraSANs are more IPs or DNS names for the serving certificate (only
	// used when the certificate is created).
	ExtraSANs []string
	// KubeconfigServer is the server URL written into admin.kubeconfig;
	// empty means https://<loopback or bind address>:<secure-port>.
	KubeconfigServer string

	// MemoryLimit is the Go soft memory limit of the whole process (a
	// Kubernetes quantity; "0" turns it off). The GOMEMLIMIT environment
	// variable wins over it.
	MemoryLimit string
	// StartMemoryLimit is the Go soft memory limit until the control plane
	// is ready ("0": none; a lower MemoryLimit wins). GOMEMLIMIT wins over it.
	StartMemoryLimit string
	// GCPercent is the Go GC target of the whole process once the control
	// plane is ready (start-up runs at Go's default); the GOGC environment
	// variable wins over it.
	GCPercent int
	// BusyGCPercent is the GC target while the process allocates fast (a
	// busy tenant); it goes back to GCPercent once allocation has been low
	// for a while. Equal to GCPercent: one target throughout.
	BusyGCPercent int
	// ReadyMaxProcs lowers GOMAXPROCS to it once the control plane is ready
	// (start-up runs with the runtime's value); 0 leaves the runtime's value,
	// which follows a cgroup CPU limit. The GOMAXPROCS environment variable
	// wins over it.
	ReadyMaxProcs int
	// ReleaseExecutablePages unmaps the vnest binary's pages that start-up
	// mapped once the control plane is ready, and again whenever it goes idle
	// after being busy (package exepages): they stay in the page cache, and
	// what the process touches again is mapped again.
	ReleaseExecutablePages bool
	// ServiceIPAllocator is the URL of the allocator that every new Service takes its cluster
	// IPs from (the syncer's, so that they are the super Service's; package
	// serviceipadmission). Empty: the tenant allocates from --service-cluster-ip-range itself.
	// With it, that range must contain the super cluster's Service range.
	ServiceIPAllocator string

	// ExtraAPIServerArgs and ExtraControllerManagerArgs are appended to the
	// generated flags of the upstream components (later flags win). Meant
	// for measurements and emergencies, not for regular configuration.
	ExtraAPIServerArgs         []string
	ExtraControllerManagerArgs []string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		EtcdServers:            []string{DefaultEtcdServer},
		BindAddress:            "0.0.0.0",
		SecurePort:             layout.DefaultSecurePort,
		ServiceClusterIPRange:  layout.DefaultServiceCIDR,
		ClusterDomain:          layout.DefaultClusterDomain,
		MemoryLimit:            DefaultMemoryLimit,
		StartMemoryLimit:       DefaultStartMemoryLimit,
		GCPercent:              DefaultGCPercent,
		BusyGCPercent:          DefaultBusyGCPercent,
		ReadyMaxProcs:          DefaultReadyMaxProcs,
		ReleaseExecutablePages: true,
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "Directory for the files this process writes (admin.kubeconfig once ready, controller-manager.kubeconfig) and, unless --pki-dir is set, the PKI files. Required.")
	fs.StringVar(&o.PKIDir, "pki-dir", o.PKIDir, "Directory with the PKI files (ca.crt/.key, apiserver.crt/.key, admin.crt/.key, controller-manager.crt/.key, front-proxy-ca.crt/.key, front-proxy-client.crt/.key, kubelet-client.crt/.key, csr-signer-ca.crt/.key, sa.key/.pub). Missing files are created; existing ones are used as they are. Default: --state-dir, where the process owns them: leaf certificates that expire within 30 days are renewed at start and every 12h.")
	fs.StringSliceVar(&o.EtcdServers, "etcd-servers", o.EtcdServers, "etcd endpoints (scheme://ip:port), comma separated.")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", o.EtcdCAFile, "CA bundle to verify the etcd servers.")
	fs.StringVar(&o.EtcdCertFile, "etcd-certfile", o.EtcdCertFile, "Client certificate for etcd.")
	fs.StringVar(&o.EtcdKeyFile, "etcd-keyfile", o.EtcdKeyFile, "Client key for etcd.")
	fs.StringVar(&o.EtcdPrefix, "etcd-prefix", o.EtcdPrefix, "The tenant's etcd key prefix, for example /vnest/tenants/<key>. Required; every key of the tenant lives under it.")
	fs.DurationVar(&o.EtcdCompactionInterval, "etcd-compaction-interval", o.EtcdCompactionInterval, "How often this apiserver compacts etcd; 0 leaves compaction to the owner of the shared etcd.")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "IP address to serve on.")
	fs.IntVar(&o.SecurePort, "secure-port", o.SecurePort, "Port to serve HTTPS on (there is no insecure port).")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress, "IP address published as the endpoint of the tenant's `kubernetes` Service; default: --bind-address, or the host's default address when that is 0.0.0.0.")
	fs.StringVar(&o.ServiceClusterIPRange, "service-cluster-ip-range", o.ServiceClusterIPRange, "CIDR of the tenant's Service ClusterIPs; its first address is the `kubernetes` Service.")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", o.ClusterDomain, "DNS domain of the tenant cluster.")
	fs.StringVar(&o.ServiceAccountIssuer, "service-account-issuer", o.ServiceAccountIssuer, "Issuer of the tenant's service-account tokens; default https://kubernetes.default.svc.<cluster-domain>.")
	fs.StringSliceVar(&o.ExtraSANs, "extra-sans", o.ExtraSANs, "More IP addresses or DNS names for the serving certificate (applied when it is created).")
	fs.StringVar(&o.KubeconfigServer, "kubeconfig-server", o.KubeconfigServer, "Server URL written into admin.kubeconfig; default https://<loopback or bind address>:<secure-port>.")
	fs.StringVar(&o.MemoryLimit, "memory-limit", o.MemoryLimit, "Go soft memory limit of the process (quantity like 300Mi; 0 = none). Keep it well above the live heap (~100 MiB idle) or the GC spins. GOMEMLIMIT wins.")
	fs.StringVar(&o.StartMemoryLimit, "start-memory-limit", o.StartMemoryLimit, "Go soft memory limit from process start until the control plane is ready, then --memory-limit (quantity; 0 = none). It makes start-up's garbage collected early, so the idle process keeps less; it is raised to 1.5 times the live heap when that comes within a third of it. GOMEMLIMIT wins.")
	fs.IntVar(&o.GCPercent, "gc-percent", o.GCPercent, "Go GC target percentage of the process once ready, while it allocates little (start-up runs at Go's default, 100). GOGC wins.")
	fs.IntVar(&o.BusyGCPercent, "busy-gc-percent", o.BusyGCPercent, "Go GC target percentage while the process allocates fast (a busy tenant); back to --gc-percent, with the memory released, once allocation has been low for 30s. Equal to --gc-percent: one target throughout. GOGC wins.")
	fs.IntVar(&o.ReadyMaxProcs, "ready-max-procs", o.ReadyMaxProcs, "Once ready, lower GOMAXPROCS to this: the control plane then runs Go code on at most this many cores at once (start-up runs with the runtime's value). 0 leaves the runtime's value, which follows a cgroup CPU limit. GOMAXPROCS wins.")
	fs.BoolVar(&o.ReleaseExecutablePages, "release-executable-pages", o.ReleaseExecutablePages, "Once ready, and whenever the process goes idle after being busy, unmap the pages of the vnest executable it mapped and does not use (they stay in the page cache; what is touched again is mapped again).")
	fs.StringVar(&o.ServiceIPAllocator, "service-ip-allocator", o.ServiceIPAllocator, "https URL of the allocator (the syncer's "+serviceip.Path+") that new Services take their cluster IPs from, so that they equal the super Services'; --service-cluster-ip-range must then contain the super cluster's Service range. A Service create fails while it is unreachable. Empty: the tenant allocates on its own.")
	fs.StringArrayVar(&o.ExtraAPIServerArgs, "kube-apiserver-arg", o.ExtraAPIServerArgs, "Extra kube-apiserver flag (--name=value), repeatable; overrides the generated ones (a list flag such as --disable-admission-plugins adds to them).")
	fs.StringArrayVar(&o.ExtraControllerManagerArgs, "kube-controller-manager-arg", o.ExtraControllerManagerArgs, "Extra kube-controller-manager flag (--name=value), repeatable; overrides the generated ones (a list flag such as --controllers adds to them).")
}

// completedConfig is everything Run needs, resolved.
type completedConfig struct {
	stateDir string
	pkiDir   string
	pki      layout.PKIFiles
	opts     Options // a copy, with defaults filled in

	serviceCIDR      *net.IPNet
	kubernetesSvcIP  net.IP
	bindIP           net.IP
	advertiseIP      net.IP // nil: kube-apiserver picks
	loopbackHost     string // how this process reaches its own apiserver
	kubeconfigServer string
	memoryLimit      int64 // bytes; 0 = unset
	startMemoryLimit int64 // bytes; 0 = unset
}

// CompletedConfig can only be built by Options.Complete, so nothing runs
// half-configured.
type CompletedConfig struct {
	*completedConfig
}

// Complete resolves every default and derived value and makes sure the PKI
// files exist, creating the missing ones. It starts nothing.
func (o *Options) Complete() (CompletedConfig, error) {
	c := &completedConfig{opts: *o}
	if err := o.validateFlags(); err != nil {
		return CompletedConfig{}, err
	}
	var err error
	if c.stateDir, err = filepath.Abs(o.StateDir); err != nil {
		return CompletedConfig{}, fmt.Errorf("--state-dir: %w", err)
	}
	c.pkiDir = c.stateDir
	if o.PKIDir != "" {
		if c.pkiDir, err = filepath.Abs(o.PKIDir); err != nil {
			return CompletedConfig{}, fmt.Errorf("--pki-dir: %w", err)
		}
	}
	_, c.serviceCIDR, _ = netutils.ParseCIDRSloppy(o.ServiceClusterIPRange)
	if c.kubernetesSvcIP, err = netutils.GetIndexedIP(c.serviceCIDR, 1); err != nil {
		return CompletedConfig{}, fmt.Errorf("--service-cluster-ip-range %s: %w", o.ServiceClusterIPRange, err)
	}
	c.bindIP = netutils.ParseIPSloppy(o.BindAddress)
	c.advertiseIP = netutils.ParseIPSloppy(o.AdvertiseAddress)
	c.loopbackHost = "127.0.0.1"
	if !c.bindIP.IsUnspecified() {
		c.loopbackHost = c.bindIP.String()
	}
	if c.opts.ServiceAccountIssuer == "" {
		c.opts.ServiceAccountIssuer = layout.ServiceAccountIssuer(o.ClusterDomain)
	}
	c.kubeconfigServer = o.KubeconfigServer
	if c.kubeconfigServer == "" {
		c.kubeconfigServer = "https://" + net.JoinHostPort(c.loopbackHost, strconv.Itoa(o.SecurePort))
	}
	if c.memoryLimit, err = parseMemoryLimit("--memory-limit", o.MemoryLimit); err != nil {
		return CompletedConfig{}, err
	}
	if c.startMemoryLimit, err = parseMemoryLimit("--start-memory-limit", o.StartMemoryLimit); err != nil {
		return CompletedConfig{}, err
	}
	if c.pki, err = layout.EnsurePKI(c.pkiDir, layout.ServingCertSpec(c.servingNames())); err != nil {
		return CompletedConfig{}, err
	}
	return CompletedConfig{c}, nil
}

// servingNames are every name and address a client may use for this apiserver.
func (c *completedConfig) servingNames() layout.ServingNames {
	n := layout.ServingNames{ClusterDomain: c.opts.ClusterDomain, KubernetesServiceIP: c.kubernetesSvcIP}
	for _, ip := range []net.IP{c.bindIP, c.advertiseIP} {
		if ip != nil && !ip.IsUnspecified() {
			n.IPs = append(n.IPs, ip)
		}
	}
	for _, san := range c.opts.ExtraSANs {
		if ip := netutils.ParseIPSloppy(san); ip != nil {
			n.IPs = append(n.IPs, ip)
		} else {
			n.DNSNames = append(n.DNSNames, san)
		}
	}
	if u, err := url.Parse(c.opts.KubeconfigServer); err == nil && u.Hostname() != "" {
		if ip := netutils.ParseIPSloppy(u.Hostname()); ip != nil {
			n.IPs = append(n.IPs, ip)
		} else {
			n.DNSNames = append(n.DNSNames, u.Hostname())
		}
	}
	return n
}

// Validate checks that the completed configuration can run: the files it
// needs exist. Flag syntax was checked by Complete.
func (c CompletedConfig) Validate() error {
	var errs []error
	need := []string{
		c.pki.CA.CertFile, c.pki.CA.KeyFile, c.pki.Serving.CertFile, c.pki.Serving.KeyFile,
		c.pki.Admin.CertFile, c.pki.Admin.KeyFile, c.pki.ControllerManager.CertFile, c.pki.ControllerManager.KeyFile,
		c.pki.FrontProxyCA.CertFile, c.pki.FrontProxyClient.CertFile, c.pki.FrontProxyClient.KeyFile,
		c.pki.KubeletClient.CertFile, c.pki.KubeletClient.KeyFile, c.pki.CSRSignerCA.CertFile, c.pki.CSRSignerCA.KeyFile,
		c.pki.ServiceAccountKey, c.pki.ServiceAccountPub,
	}
	for _, f := range []string{c.opts.EtcdCAFile, c.opts.EtcdCertFile, c.opts.EtcdKeyFile} {
		if f != "" {
			need = append(need, f)
		}
	}
	for _, f := range need {
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing", f))
		}
	}
	return errors.Join(errs...)
}

// validateFlags checks the syntax of every flag; it touches nothing.
func (o *Options) validateFlags() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.StateDir == "" {
		add("--state-dir is required")
	}
	if err := validateEtcdPrefix(o.EtcdPrefix); err != nil {
		errs = append(errs, err)
	}
	if len(o.EtcdServers) == 0 {
		add("--etcd-servers is required")
	}
	for _, s := range o.EtcdServers {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("invalid --etcd-servers entry %q: want http(s)://host:port", s)
		}
	}
	if (o.EtcdCertFile == "") != (o.EtcdKeyFile == "") {
		add("--etcd-certfile and --etcd-keyfile go together")
	}
	if o.EtcdCompactionInterval < 0 {
		add("invalid --etcd-compaction-interval %s: must not be negative", o.EtcdCompactionInterval)
	}
	if netutils.ParseIPSloppy(o.BindAddress) == nil {
		add("invalid --bind-address %q: not an IP address", o.BindAddress)
	}
	if o.AdvertiseAddress != "" {
		if ip := netutils.ParseIPSloppy(o.AdvertiseAddress); ip == nil || ip.IsUnspecified() {
			add("invalid --advertise-address %q: want a concrete IP address", o.AdvertiseAddress)
		}
	}
	if o.SecurePort < 1 || o.SecurePort > 65535 {
		add("invalid --secure-port %d: must be between 1 and 65535", o.SecurePort)
	}
	if _, cidr, err := netutils.ParseCIDRSloppy(o.ServiceClusterIPRange); err != nil {
		add("invalid --service-cluster-ip-range %q: %v", o.ServiceClusterIPRange, err)
	} else if ones, bits := cidr.Mask.Size(); bits-ones < 2 {
		add("invalid --service-cluster-ip-range %q: too small", o.ServiceClusterIPRange)
	}
	if msgs := utilvalidation.IsDNS1123Subdomain(o.ClusterDomain); len(msgs) > 0 {
		add("invalid --cluster-domain %q: %s", o.ClusterDomain, strings.Join(msgs, "; "))
	}
	for _, san := range o.ExtraSANs {
		if netutils.ParseIPSloppy(san) != nil {
			continue
		}
		if msgs := utilvalidation.IsDNS1123Subdomain(strings.TrimPrefix(san, "*.")); len(msgs) > 0 {
			add("invalid --extra-sans entry %q: neither an IP address nor a DNS name", san)
		}
	}
	if o.KubeconfigServer != "" {
		if u, err := url.Parse(o.KubeconfigServer); err != nil || u.Scheme != "https" || u.Host == "" {
			add("invalid --kubeconfig-server %q: want https://host[:port]", o.KubeconfigServer)
		}
	}
	if o.ServiceIPAllocator != "" {
		if u, err := url.Parse(o.ServiceIPAllocator); err != nil || u.Scheme != "https" || u.Host == "" {
			add("invalid --service-ip-allocator %q: want https://host:port/path", o.ServiceIPAllocator)
		}
	}
	if _, err := parseMemoryLimit("--memory-limit", o.MemoryLimit); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseMemoryLimit("--start-memory-limit", o.StartMemoryLimit); err != nil {
		errs = append(errs, err)
	}
	if o.GCPercent < 1 {
		add("invalid --gc-percent %d: must be positive", o.GCPercent)
	}
	if o.BusyGCPercent < o.GCPercent {
		add("invalid --busy-gc-percent %d: must be at least --gc-percent (%d)", o.BusyGCPercent, o.GCPercent)
	}
	if o.ReadyMaxProcs < 0 {
		add("invalid --ready-max-procs %d: must be 0 (the runtime's value) or positive", o.ReadyMaxProcs)
	}
	for _, a := range append(append([]string{}, o.ExtraAPIServerArgs...), o.ExtraControllerManagerArgs...) {
		if !strings.HasPrefix(a, "--") {
			add("invalid extra component flag %q: want --name=value", a)
		}
	}
	return errors.Join(errs...)
}

// validateEtcdPrefix insists on an absolute, clean prefix of at least two
// segments: the prefix is the tenant's whole world, and one like "/" or
// "/registry" would be another tenant's (or the super cluster's) data.
func validateEtcdPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("--etcd-prefix is required (for example /vnest/tenants/<key>)")
	case !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || filepath.Clean(p) != p:
		return fmt.Errorf("invalid --etcd-prefix %q: want an absolute path without a trailing slash, like /vnest/tenants/<key>", p)
	case strings.Count(p, "/") < 2:
		return fmt.Errorf("invalid --etcd-prefix %q: too broad; use a per-tenant prefix like /vnest/tenants/<key>", p)
	case p == "/registry" || strings.HasPrefix(p, "/registry/"):
		return fmt.Errorf("invalid --etcd-prefix %q: /registry is the default prefix of a plain kube-apiserver", p)
	}
	return nil
}
