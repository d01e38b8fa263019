package apiserver

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/apiserver/vapstatus"
	"github.com/vnest-dev/vnest/internal/pki"
)

func TestValidateFlags(t *testing.T) {
	valid := func() *Options {
		o := NewOptions()
		o.StateDir, o.EtcdPrefix = "/tmp/x", "/vnest/tenants/x"
		return o
	}
	tests := map[string]struct {
		mutate  func(*Options)
		wantErr string // substring; "" means valid
	}{
		"defaults":              {func(*Options) {}, ""},
		"no state dir":          {func(o *Options) { o.StateDir = "" }, "--state-dir is required"},
		"no prefix":             {func(o *Options) { o.EtcdPrefix = "" }, "--etcd-prefix is required"},
		"relative prefix":       {func(o *Options) { o.EtcdPrefix = "vnest/x" }, "absolute path"},
		"trailing slash":        {func(o *Options) { o.EtcdPrefix = "/vnest/x/" }, "trailing slash"},
		"root prefix":           {func(o *Options) { o.EtcdPrefix = "/" }, "invalid --etcd-prefix"},
		"one segment":           {func(o *Options) { o.EtcdPrefix = "/vnest" }, "too broad"},
		"registry":              {func(o *Options) { o.EtcdPrefix = "/registry/x" }, "/registry"},
		"unclean prefix":        {func(o *Options) { o.EtcdPrefix = "/vnest/../x" }, "absolute path"},
		"etcd url":              {func(o *Options) { o.EtcdServers = []string{"127.0.0.1:2379"} }, "want http(s)://host:port"},
		"etcd cert without key": {func(o *Options) { o.EtcdCertFile = "c.crt" }, "go together"},
		"bad bind":              {func(o *Options) { o.BindAddress = "localhost" }, "--bind-address"},
		"unspecified advertise": {func(o *Options) { o.AdvertiseAddress = "0.0.0.0" }, "--advertise-address"},
		"port":                  {func(o *Options) { o.SecurePort = 0 }, "--secure-port"},
		"cidr":                  {func(o *Options) { o.ServiceClusterIPRange = "10.32.0.0" }, "--service-cluster-ip-range"},
		"tiny cidr":             {func(o *Options) { o.ServiceClusterIPRange = "10.32.0.0/32" }, "too small"},
		"domain":                {func(o *Options) { o.ClusterDomain = "Cluster_Local" }, "--cluster-domain"},
		"san":                   {func(o *Options) { o.ExtraSANs = []string{"10.0.0.1", "api.example.com", "not a name"} }, `"not a name"`},
		"kubeconfig server":     {func(o *Options) { o.KubeconfigServer = "http://x:1" }, "--kubeconfig-server"},
		"allocator":             {func(o *Options) { o.ServiceIPAllocator = "https://10.0.0.5:10250/vnest/v1/allocate-service-ip" }, ""},
		"allocator over http":   {func(o *Options) { o.ServiceIPAllocator = "http://10.0.0.5:10250/x" }, "--service-ip-allocator"},
		"memory limit":          {func(o *Options) { o.MemoryLimit = "lots" }, "--memory-limit"},
		"memory limit off":      {func(o *Options) { o.MemoryLimit = "0" }, ""},
		"start memory limit":    {func(o *Options) { o.StartMemoryLimit = "-1Mi" }, "--start-memory-limit"},
		"gc percent":            {func(o *Options) { o.GCPercent = 0 }, "--gc-percent"},
		"busy gc below idle":    {func(o *Options) { o.BusyGCPercent = o.GCPercent - 1 }, "--busy-gc-percent"},
		"negative max procs":    {func(o *Options) { o.ReadyMaxProcs = -1 }, "--ready-max-procs"},
		"max procs off":         {func(o *Options) { o.ReadyMaxProcs = 0 }, ""},
		"extra arg without --":  {func(o *Options) { o.ExtraAPIServerArgs = []string{"v=2"} }, "--name=value"},
		"two errors at once":    {func(o *Options) { o.SecurePort, o.StateDir = -1, "" }, "--secure-port"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := valid()
			tc.mutate(o)
			err := o.validateFlags()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestEveryControllerIsDecided fails when upstream adds or renames a
// controller: each must be either run or listed as disabled with a reason.
func TestEveryControllerIsDecided(t *testing.T) {
	known := kcm.KnownControllers()
	for _, name := range Controllers {
		if !slices.Contains(known, name) {
			t.Errorf("enabled controller %q is not a kube-controller-manager 1.36 controller name", name)
		}
		if _, ok := DisabledControllers[name]; ok {
			t.Errorf("controller %q is both enabled and disabled", name)
		}
	}
	for name := range ownControllers {
		if !slices.Contains(Controllers, name) {
			t.Errorf("controller %q that vnest runs itself is not among the enabled ones", name)
		}
	}
	for name := range DisabledControllers {
		if !slices.Contains(known, name) {
			t.Errorf("disabled controller %q is not a kube-controller-manager 1.36 controller name", name)
		}
	}
	for _, name := range known {
		if _, off := DisabledControllers[name]; !off && !slices.Contains(Controllers, name) {
			t.Errorf("upstream controller %q is neither enabled nor disabled: decide", name)
		}
	}
}

func TestCompleteCreatesPKIOnceAndKeepsIt(t *testing.T) {
	dir := t.TempDir()
	o := NewOptions()
	o.StateDir, o.EtcdPrefix = dir, "/vnest/tenants/x"
	o.AdvertiseAddress, o.ExtraSANs = "192.0.2.10", []string{"api.example.com"}
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(c.pki.Serving.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	// A later start with other names keeps the existing certificate: its
	// owner (the operator, or a previous run) decides when to reissue.
	o.ExtraSANs = []string{"other.example.com"}
	c, err = o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(c.pki.Serving.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Complete reissued an existing serving certificate")
	}

	if err := os.Remove(c.pki.ServiceAccountPub); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Complete(); err == nil || !strings.Contains(err.Error(), "sa.pub is missing") {
		t.Errorf("Complete with sa.key but no sa.pub: error = %v, want one about sa.pub", err)
	}
}

func TestServingCertSpec(t *testing.T) {
	o := NewOptions()
	o.StateDir, o.EtcdPrefix = t.TempDir(), "/vnest/tenants/x"
	o.BindAddress, o.AdvertiseAddress = "0.0.0.0", "192.0.2.10"
	o.ExtraSANs = []string{"192.0.2.20", "api.example.com"}
	o.KubeconfigServer = "https://tenant-x.vnest.svc:443"
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	spec := layout.ServingCertSpec(c.servingNames())
	wantDNS := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "api.example.com", "tenant-x.vnest.svc"}
	if !slices.Equal(spec.DNSNames, wantDNS) {
		t.Errorf("DNS names = %v, want %v", spec.DNSNames, wantDNS)
	}
	var ips []string
	for _, ip := range spec.IPs {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "10.32.0.1", "192.0.2.10", "192.0.2.20"}; !slices.Equal(ips, want) {
		t.Errorf("IPs = %v, want %v", ips, want)
	}
}

// TestControllerCredentials: controllers share the controller manager's
// identity when its certificate is in system:masters (new PKI), and keep a
// service account each with a certificate from before (no group), which
// could not do their work otherwise.
func TestControllerCredentials(t *testing.T) {
	dir := t.TempDir()
	o := NewOptions()
	o.StateDir, o.EtcdPrefix = dir, "/vnest/tenants/x"
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.controllerManagerArgs(), "--use-service-account-credentials=false") {
		t.Errorf("new PKI: controller-manager args %v, want --use-service-account-credentials=false", c.controllerManagerArgs())
	}
	// The controllers vnest runs itself (ownControllers) use that identity too.
	if !c.runsOwnControllers() || slices.Contains(c.kcmControllers(), vapstatus.Name) || len(c.kcmControllers()) != len(Controllers)-len(ownControllers) {
		t.Errorf("new PKI: vnest runs its own controllers %v, kube-controller-manager runs %v; want vnest to run %v", c.runsOwnControllers(), c.kcmControllers(), ownControllers)
	}
	ca, err := pki.LoadOrCreateCA(dir, layout.CAName, "vnest-tenant-ca")
	if err != nil {
		t.Fatal(err)
	}
	old := layout.ControllerManagerCertSpec()
	old.Organization = nil
	if _, err := ca.Ensure(dir, layout.ControllerManagerCertName, old); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.controllerManagerArgs(), "--use-service-account-credentials=true") {
		t.Errorf("certificate without system:masters: controller-manager args %v, want --use-service-account-credentials=true", c.controllerManagerArgs())
	}
	if c.runsOwnControllers() || !slices.Equal(c.kcmControllers(), Controllers) {
		t.Errorf("certificate without system:masters: vnest runs its own controllers %v, kube-controller-manager runs %v; want kube-controller-manager to run all", c.runsOwnControllers(), c.kcmControllers())
	}
}

// TestCSRSigningCA: kube-controller-manager signs CSRs with the CSR signer's CA, never with the
// tenant CA that the syncer's kubelet proxy trusts (a CSR names its own subject, so it could be
// the kubelet client's), and the apiserver trusts both CAs for client certificates.
func TestCSRSigningCA(t *testing.T) {
	o := NewOptions()
	o.StateDir, o.EtcdPrefix = t.TempDir(), "/vnest/tenants/x"
	c, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	kcmArgs := c.controllerManagerArgs()
	for _, want := range []string{
		"--cluster-signing-cert-file=" + c.pki.CSRSignerCA.CertFile,
		"--cluster-signing-key-file=" + c.pki.CSRSignerCA.KeyFile,
		"--root-ca-file=" + c.pki.CA.CertFile, // kube-root-ca.crt: the serving CA
	} {
		if !slices.Contains(kcmArgs, want) {
			t.Errorf("controller-manager args lack %s: %v", want, kcmArgs)
		}
	}
	for _, a := range kcmArgs {
		if strings.HasPrefix(a, "--cluster-signing-") && (strings.HasSuffix(a, "="+c.pki.CA.CertFile) || strings.HasSuffix(a, "="+c.pki.CA.KeyFile)) {
			t.Errorf("controller manager signs CSRs with the tenant CA: %s", a)
		}
	}

	if err := c.writeClientCABundle(); err != nil {
		t.Fatal(err)
	}
	want := "--client-ca-file=" + c.clientCABundleFile()
	if !slices.Contains(c.apiServerArgs(), want) {
		t.Errorf("apiserver args lack %s: %v", want, c.apiServerArgs())
	}
	bundle, err := os.ReadFile(c.clientCABundleFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{c.pki.CA.CertFile, c.pki.CSRSignerCA.CertFile} {
		ca, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bundle, ca) {
			t.Errorf("the client CA bundle lacks %s", f)
		}
	}
}
