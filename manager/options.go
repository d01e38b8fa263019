package manager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/internal/securemetrics"
	"github.com/vnest-dev/vnest/internal/syncerlease"
)

// Options are the user-facing settings of `vnest manager`.
type Options struct {
	// Kubeconfig of the super cluster; empty means $KUBECONFIG, then
	// in-cluster, then ~/.kube/config.
	Kubeconfig string

	// The default storage: the etcd of VirtualClusters without
	// spec.storage. The client certificate must be allowed to manage users
	// and roles (root) when etcd auth is on.
	EtcdServers  []string
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string
	// EtcdCAKeyFile is the key of the CA in EtcdCAFile; with it the
	// manager issues each tenant an etcd client certificate of its own.
	EtcdCAKeyFile string

	// StateDir holds the local provisioner's tenants (StateDir/<ns>/<name>);
	// empty turns the local provisioner off.
	StateDir string
	// VnestBinary is started as `vnest apiserver` by the local provisioner,
	// or the vnest-apiserver beside it (layout.ControlPlaneBinary).
	VnestBinary string
	// HostIP is the address local control planes advertise and NodePorts
	// are reached on; empty means the source address of the default route.
	HostIP string
	// LocalPortRange is "MIN-MAX", the ports of local control planes.
	LocalPortRange string
	// Image of the cluster provisioner's control-plane pods.
	Image string
	// ApiserverCommand is the executable those pods run with the arguments
	// "apiserver ..."; empty: the image's entrypoint.
	ApiserverCommand string

	// ServiceIPAllocator and TenantServiceCIDR are passed to every tenant
	// apiserver as --service-ip-allocator and --service-cluster-ip-range:
	// the syncer's allocator URL and the super cluster's Service range, so
	// that tenant Services get their super Services' cluster IPs. Empty:
	// the apiserver's defaults (tenants allocate on their own).
	ServiceIPAllocator string
	TenantServiceCIDR  string

	// MetricsBindAddress serves controller-runtime's metrics on /metrics; "0" turns it off.
	MetricsBindAddress string
	// MetricsSecure serves the metrics address over HTTPS and lets a request through only when
	// the super cluster authenticates its bearer token (TokenReview) and authorizes its user to
	// get the path, a non-resource URL (SubjectAccessReview), as the syncer's --metrics-secure
	// and kubebuilder's projects by default: for an address others reach, such as a pod IP.
	MetricsSecure bool
	// MetricsCertDir holds the serving certificate of the secure metrics address, tls.crt and
	// tls.key, reloaded when they change; empty: a certificate signed by itself, made at start.
	MetricsCertDir         string
	HealthProbeBindAddress string
	// Concurrency is how many VirtualClusters are reconciled at once.
	Concurrency int
	// ControlPlaneFailureThreshold is how many resyncs in a row a running
	// tenant must fail, for a reason that may pass by itself (a failed
	// health check, etcd or the super cluster's API not answering), before
	// it leaves Running: at once for failed health checks, for the others
	// once its control plane does not answer either.
	ControlPlaneFailureThreshold int
	// SyncerLeaseNamespace and SyncerLeaseName are the syncer's heartbeat
	// Lease (the syncer's --lease-namespace and --lease-name): a Syncing
	// condition that is True while it has expired becomes Unknown
	// (syncerlease.go). An empty name turns the check off.
	SyncerLeaseNamespace, SyncerLeaseName string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		LocalPortRange:         "7000-7999",
		Image:                  DefaultImage,
		ApiserverCommand:       DefaultApiserverCommand,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		Concurrency:            4,

		ControlPlaneFailureThreshold: DefaultFailureThreshold,
		SyncerLeaseNamespace:         syncerlease.DefaultNamespace,
		SyncerLeaseName:              syncerlease.DefaultName,
	}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the super cluster. Default: $KUBECONFIG, in-cluster config, ~/.kube/config.")
	fs.StringSliceVar(&o.EtcdServers, "etcd-servers", o.EtcdServers, "Default storage: etcd endpoints for VirtualClusters without spec.storage (comma separated). Empty: such VirtualClusters are refused.")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", o.EtcdCAFile, "Default storage: CA bundle that verifies the etcd servers.")
	fs.StringVar(&o.EtcdCertFile, "etcd-certfile", o.EtcdCertFile, "Default storage: client certificate; must be root's when etcd auth is on (the manager creates a user and role per tenant).")
	fs.StringVar(&o.EtcdKeyFile, "etcd-keyfile", o.EtcdKeyFile, "Default storage: client key.")
	fs.StringVar(&o.EtcdCAKeyFile, "etcd-ca-keyfile", o.EtcdCAKeyFile, "Default storage: key of the CA in --etcd-cafile, to issue each tenant an etcd client certificate of its own (required when etcd auth is on).")
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "Directory of the local provisioner (per tenant STATE_DIR/<namespace>/<name>: PKI files and log). Empty turns the local provisioner off.")
	fs.StringVar(&o.VnestBinary, "vnest-binary", o.VnestBinary, "The vnest executable the local provisioner runs as `vnest apiserver`. Default: this executable. Either way, vnest-apiserver beside it (the control plane alone; `make build` makes it), when there and not older, runs instead.")
	fs.StringVar(&o.HostIP, "host-ip", o.HostIP, "IP address of this host that local control planes advertise and NodePorts are reached on. Default: the source address of the default route.")
	fs.StringVar(&o.LocalPortRange, "local-port-range", o.LocalPortRange, "Ports for local control planes, MIN-MAX. A tenant keeps its port across manager restarts.")
	fs.StringVar(&o.Image, "apiserver-image", o.Image, "Image of the cluster provisioner's control-plane pods.")
	fs.StringVar(&o.ApiserverCommand, "apiserver-command", o.ApiserverCommand, "Executable the cluster provisioner's control-plane pods run as `<command> apiserver ...`: the control plane alone in the vnest image. Empty: the image's entrypoint (`vnest apiserver ...` in the vnest image).")
	fs.StringVar(&o.ServiceIPAllocator, "service-ip-allocator", o.ServiceIPAllocator, "URL of the syncer's Service IP allocator (https://<kubelet proxy address>/vnest/v1/allocate-service-ip) passed to every tenant apiserver, so that tenant Services get the cluster IPs of their super Services; needs --tenant-service-cidr. Empty: tenants allocate on their own.")
	fs.StringVar(&o.TenantServiceCIDR, "tenant-service-cidr", o.TenantServiceCIDR, "--service-cluster-ip-range of every tenant apiserver; with --service-ip-allocator, the super cluster's Service range. Empty: the apiserver's default.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the metrics endpoint, like :8080; 0 turns it off.")
	securemetrics.AddFlags(fs, &o.MetricsSecure, &o.MetricsCertDir)
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of /healthz and /readyz, like :8081; 0 turns them off.")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "How many VirtualClusters are reconciled at the same time.")
	fs.IntVar(&o.ControlPlaneFailureThreshold, "control-plane-failure-threshold", o.ControlPlaneFailureThreshold, "How many resyncs (10 s apart after a failure) in a row a running tenant must fail, for a reason that may pass by itself (its control plane's /readyz, its etcd or the super cluster's API not answering), before it leaves Running and the syncer stops serving it; when what failed is not its /readyz, only if its /readyz fails then too (checked again at each further failed resync). An object the super cluster refuses is not such a reason, and leaves a tenant whose /readyz answers Running.")
	fs.StringVar(&o.SyncerLeaseNamespace, "syncer-lease-namespace", o.SyncerLeaseNamespace, "Namespace of the syncer's heartbeat Lease (the syncer's --lease-namespace).")
	fs.StringVar(&o.SyncerLeaseName, "syncer-lease-name", o.SyncerLeaseName, "Name of the syncer's heartbeat Lease (the syncer's --lease-name): a VirtualCluster's Syncing condition that is True while this Lease has not been renewed for its duration (and 10 s more) becomes Unknown, reason SyncerNotServing. Empty turns the check off.")
}

// completedConfig is everything Run needs, resolved.
type completedConfig struct {
	opts           Options
	restConfig     *rest.Config
	defaultStorage *etcdCreds
	stateDir       string
	binary         string
	hostIP         net.IP
	portMin        int
	portMax        int
}

// CompletedConfig can only be built by Options.Complete, so nothing runs
// half-configured.
type CompletedConfig struct {
	*completedConfig
}

// Complete checks the flags and resolves every default: it reads the
// super cluster's kubeconfig and the default storage's files. It starts
// nothing.
func (o *Options) Complete() (CompletedConfig, error) {
	if err := o.validateFlags(); err != nil {
		return CompletedConfig{}, err
	}
	c := &completedConfig{opts: *o}
	c.portMin, c.portMax, _ = parsePortRange(o.LocalPortRange)
	var err error
	if c.restConfig, err = loadKubeconfig(o.Kubeconfig); err != nil {
		return CompletedConfig{}, err
	}
	if len(o.EtcdServers) > 0 {
		if c.defaultStorage, err = o.defaultStorage(); err != nil {
			return CompletedConfig{}, err
		}
	}
	if o.StateDir != "" {
		if c.stateDir, err = filepath.Abs(o.StateDir); err != nil {
			return CompletedConfig{}, fmt.Errorf("--state-dir: %w", err)
		}
	}
	vnest := o.VnestBinary
	if vnest == "" {
		if vnest, err = os.Executable(); err != nil {
			return CompletedConfig{}, fmt.Errorf("finding the vnest executable (set --vnest-binary): %w", err)
		}
	}
	c.binary = layout.ControlPlaneBinary(vnest)
	if o.HostIP != "" {
		c.hostIP = net.ParseIP(o.HostIP)
	} else if c.hostIP, err = defaultRouteIP(); err != nil {
		return CompletedConfig{}, err
	}
	return CompletedConfig{c}, nil
}

// tenantArgs are the `vnest apiserver` flags every tenant gets from the
// manager's flags.
func (o *Options) tenantArgs() []string {
	var args []string
	if o.TenantServiceCIDR != "" {
		args = append(args, "--service-cluster-ip-range="+o.TenantServiceCIDR)
	}
	if o.ServiceIPAllocator != "" {
		args = append(args, "--service-ip-allocator="+o.ServiceIPAllocator)
	}
	return args
}

// The secure metrics address (--metrics-secure) asks the super cluster to review each request's
// bearer token and its user's access to the path.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// metricsOptions are the metrics server's: on --metrics-bind-address, secure with
// --metrics-secure (the manager's client to the super cluster asks the reviews).
func (o *Options) metricsOptions() securemetrics.Options {
	return securemetrics.Options{BindAddress: o.MetricsBindAddress, Secure: o.MetricsSecure, CertDir: o.MetricsCertDir}
}

// syncerLease is the syncer's Lease the manager checks; empty: none.
func (o *Options) syncerLease() types.NamespacedName {
	if o.SyncerLeaseName == "" {
		return types.NamespacedName{}
	}
	return types.NamespacedName{Namespace: o.SyncerLeaseNamespace, Name: o.SyncerLeaseName}
}

// loadKubeconfig follows kubectl's rules: the explicit file, $KUBECONFIG,
// in-cluster, ~/.kube/config.
func loadKubeconfig(file string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = file
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the super cluster's kubeconfig: %w", err)
	}
	return cfg, nil
}

// defaultStorage reads the files of the default storage.
func (o *Options) defaultStorage() (*etcdCreds, error) {
	c := &etcdCreds{Endpoints: o.EtcdServers, Source: "manager's --etcd-* flags"}
	for _, f := range []struct {
		flag, file string
		into       *[]byte
	}{
		{"--etcd-cafile", o.EtcdCAFile, &c.CA},
		{"--etcd-certfile", o.EtcdCertFile, &c.Cert},
		{"--etcd-keyfile", o.EtcdKeyFile, &c.Key},
	} {
		if f.file == "" {
			continue
		}
		data, err := os.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
		*f.into = data
	}
	if o.EtcdCAKeyFile != "" {
		key, err := os.ReadFile(o.EtcdCAKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-ca-keyfile: %w", err)
		}
		if c.Signer, err = newSigningCA(c.CA, key); err != nil {
			return nil, fmt.Errorf("--etcd-ca-keyfile %s with --etcd-cafile %s: %w", o.EtcdCAKeyFile, o.EtcdCAFile, err)
		}
	}
	if _, err := c.tlsConfig(); err != nil {
		return nil, err
	}
	return c, nil
}

// validateFlags checks every flag's syntax; it touches nothing.
func (o *Options) validateFlags() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(o.EtcdServers) > 0 {
		if err := validateEndpoints(o.EtcdServers); err != nil {
			add("--etcd-servers: %v", err)
		}
	}
	if len(o.EtcdServers) == 0 && (o.EtcdCAFile != "" || o.EtcdCertFile != "" || o.EtcdKeyFile != "" || o.EtcdCAKeyFile != "") {
		add("--etcd-cafile, --etcd-certfile, --etcd-keyfile and --etcd-ca-keyfile need --etcd-servers")
	}
	if (o.EtcdCertFile == "") != (o.EtcdKeyFile == "") {
		add("--etcd-certfile and --etcd-keyfile go together")
	}
	if o.EtcdCAKeyFile != "" && o.EtcdCAFile == "" {
		add("--etcd-ca-keyfile needs --etcd-cafile (the CA certificate it belongs to)")
	}
	if o.HostIP != "" {
		if ip := net.ParseIP(o.HostIP); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
			add("invalid --host-ip %q: want an IP address of this host that pods can reach (not loopback)", o.HostIP)
		}
	}
	if _, _, err := parsePortRange(o.LocalPortRange); err != nil {
		errs = append(errs, err)
	}
	if o.Image == "" {
		add("--apiserver-image must not be empty")
	}
	if o.ServiceIPAllocator != "" && o.TenantServiceCIDR == "" {
		add("--service-ip-allocator needs --tenant-service-cidr (the super cluster's Service range, which tenant Services then take their IPs from)")
	}
	if o.TenantServiceCIDR != "" {
		if _, _, err := net.ParseCIDR(o.TenantServiceCIDR); err != nil {
			add("invalid --tenant-service-cidr %q: %v", o.TenantServiceCIDR, err)
		}
	}
	if o.Concurrency < 1 {
		add("invalid --concurrency %d: must be at least 1", o.Concurrency)
	}
	if o.ControlPlaneFailureThreshold < 1 {
		add("invalid --control-plane-failure-threshold %d: must be at least 1", o.ControlPlaneFailureThreshold)
	}
	errs = append(errs, securemetrics.Validate(o.MetricsBindAddress == "0", o.MetricsSecure, o.MetricsCertDir)...)
	if o.SyncerLeaseName != "" {
		for _, msg := range validation.IsDNS1123Label(o.SyncerLeaseNamespace) {
			add("invalid --syncer-lease-namespace %q: %s", o.SyncerLeaseNamespace, msg)
		}
		for _, msg := range validation.IsDNS1123Subdomain(o.SyncerLeaseName) {
			add("invalid --syncer-lease-name %q: %s", o.SyncerLeaseName, msg)
		}
	}
	return errors.Join(errs...)
}

// parsePortRange parses "MIN-MAX".
func parsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, errA := strconv.Atoi(strings.TrimSpace(a))
	hi, errB := strconv.Atoi(strings.TrimSpace(b))
	if !ok || errA != nil || errB != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("invalid --local-port-range %q: want MIN-MAX with 1 <= MIN <= MAX <= 65535, like 7000-7999", s)
	}
	return lo, hi, nil
}

// defaultRouteIP is the source address of the default route: what pods on
// this host's node reach it at.
func defaultRouteIP() (net.IP, error) {
	conn, err := net.Dial("udp4", "192.0.2.255:9") // UDP: no packet is sent
	if err != nil {
		return nil, fmt.Errorf("finding the host IP (set --host-ip): %w", err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP, nil
}

// Validate checks what Complete cannot: that the local provisioner's
// directory is usable and its binary exists.
func (c CompletedConfig) Validate() error {
	var errs []error
	if c.stateDir != "" {
		if err := os.MkdirAll(c.stateDir, 0o700); err != nil {
			errs = append(errs, fmt.Errorf("--state-dir %s is not usable: %w", c.opts.StateDir, err))
		}
		if st, err := os.Stat(c.binary); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("--vnest-binary %s is not an executable file", c.binary))
		}
	}
	return errors.Join(errs...)
}

// Run completes and validates o and runs the manager until ctx is done.
func Run(ctx context.Context, o *Options) error {
	c, err := o.Complete()
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	return c.Run(ctx)
}

// NewScheme returns the types the manager and the CLI use.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err) // static registrations cannot fail
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return scheme
}

// Run runs the controller until ctx is done. Local control planes are
// stopped on the way out.
func (c CompletedConfig) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	scheme := NewScheme()
	// Only the manager's own Deployments and Services are cached (they are
	// watched for their status); everything else is read directly.
	managed := labels.SelectorFromSet(labels.Set{ownership.LabelManagedBy: ownership.ManagedByManager})
	mgr, err := ctrl.NewManager(c.restConfig, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logger,
		Metrics:                metricsserver.Options{BindAddress: "0"}, // securemetrics serves them, below
		HealthProbeBindAddress: c.opts.HealthProbeBindAddress,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: {Label: managed},
			&corev1.Service{}:    {Label: managed},
		}},
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	if c.opts.HealthProbeBindAddress != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return err
		}
	}
	r := &Reconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Scheme:         scheme,
		Recorder:       mgr.GetEventRecorder("vnest-manager"),
		defaultStorage: c.defaultStorage,
		tenantArgs:     c.opts.tenantArgs(),

		failureThreshold: c.opts.ControlPlaneFailureThreshold,
		syncerLease:      c.opts.syncerLease(),
		provisioners: map[v1alpha1.Provisioner]provisioner{
			v1alpha1.ProvisionerCluster: &clusterProvisioner{
				client: mgr.GetClient(), reader: mgr.GetAPIReader(), scheme: scheme, image: c.opts.Image, command: c.opts.ApiserverCommand, hostIP: c.hostIP,
			},
		},
		disabled: map[v1alpha1.Provisioner]string{},
	}
	var local *localProvisioner
	if c.stateDir != "" {
		local = newLocalProvisioner(c.stateDir, c.binary, c.hostIP, c.portMin, c.portMax, mgr.GetClient())
		r.provisioners[v1alpha1.ProvisionerLocal] = local
		if err := mgr.Add(local); err != nil {
			return err
		}
	} else {
		r.disabled[v1alpha1.ProvisionerLocal] = "the manager runs without --state-dir; use provisioner cluster"
	}
	var wakeups []<-chan event.GenericEvent
	if local != nil {
		wakeups = append(wakeups, local.wakeups)
	}
	if r.syncerLease.Name != "" {
		w := newSyncerLeaseWatcher(r.syncerLease, &r.leaseReading, mgr.GetAPIReader(), mgr.GetClient(), logger.WithName("syncer-lease"))
		if err := mgr.Add(w); err != nil {
			return err
		}
		wakeups = append(wakeups, w.wakeups)
	}
	if err := r.SetupWithManager(mgr, c.opts.Concurrency, wakeups...); err != nil {
		return err
	}
	defer r.close()
	if c.opts.MetricsBindAddress != "0" {
		// Served from the start, as controller-runtime's metrics server is, not once the
		// manager's caches have synced, as a runnable of the manager would be.
		srv, err := securemetrics.NewServer(c.opts.metricsOptions(), c.restConfig)
		if err != nil {
			return fmt.Errorf("the metrics server: %w", err)
		}
		if _, err := securemetrics.Start(ctx, srv); err != nil {
			return fmt.Errorf("serving metrics on %s: %w", c.opts.MetricsBindAddress, err)
		}
	}
	logger.Info("Starting vnest manager", "hostIP", c.hostIP, "stateDir", c.stateDir, "defaultStorage", c.opts.EtcdServers)
	return mgr.Start(ctx)
}
