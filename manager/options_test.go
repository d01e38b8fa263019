package manager

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/vnest-dev/vnest/internal/securemetrics"
	"github.com/vnest-dev/vnest/internal/testreviewer"
)

// TestServiceIPFlags: the Service IP allocator and the tenant Service range reach every tenant
// apiserver, and an allocator without the range (tenants could not store the IPs it hands
// out) is refused.
func TestServiceIPFlags(t *testing.T) {
	o := NewOptions()
	if got := o.tenantArgs(); len(got) != 0 {
		t.Errorf("tenantArgs by default = %v, want none", got)
	}
	o.ServiceIPAllocator = "https://10.0.0.5:10250/vnest/v1/allocate-service-ip"
	if err := o.validateFlags(); err == nil || !strings.Contains(err.Error(), "--tenant-service-cidr") {
		t.Errorf("allocator without --tenant-service-cidr: err = %v", err)
	}
	o.TenantServiceCIDR = "10.96.0.0/16"
	if err := o.validateFlags(); err != nil {
		t.Errorf("validateFlags: %v", err)
	}
	want := []string{"--service-cluster-ip-range=10.96.0.0/16", "--service-ip-allocator=https://10.0.0.5:10250/vnest/v1/allocate-service-ip"}
	if diff := cmp.Diff(want, o.tenantArgs()); diff != "" {
		t.Errorf("tenantArgs (-want +got):\n%s", diff)
	}
	if got := apiserverArgs(tenant{VC: makeVC("demo").Obj(), ExtraArgs: want}, nil, "/s", "/p", "0.0.0.0", 6443, "https://x:6443"); !strings.Contains(strings.Join(got, " "), strings.Join(want, " ")) {
		t.Errorf("apiserverArgs = %v, want them to end with %v", got, want)
	}
	o.TenantServiceCIDR = "10.96.0.0"
	if err := o.validateFlags(); err == nil || !strings.Contains(err.Error(), "invalid --tenant-service-cidr") {
		t.Errorf("bad CIDR: err = %v", err)
	}
}

func TestControlPlaneFailureThresholdFlag(t *testing.T) {
	o := NewOptions()
	if o.ControlPlaneFailureThreshold != DefaultFailureThreshold {
		t.Errorf("default = %d, want %d", o.ControlPlaneFailureThreshold, DefaultFailureThreshold)
	}
	o.ControlPlaneFailureThreshold = 0
	if err := o.validateFlags(); err == nil || !strings.Contains(err.Error(), "invalid --control-plane-failure-threshold 0") {
		t.Errorf("threshold 0: err = %v", err)
	}
}

// TestSyncerLeaseFlags: by default the manager checks the Lease the syncer writes by default;
// an empty name turns the check off, and a namespace the API would refuse is refused at start.
func TestSyncerLeaseFlags(t *testing.T) {
	o := NewOptions()
	if got, want := o.syncerLease(), (types.NamespacedName{Namespace: "vnest-system", Name: "vnest-syncer"}); got != want {
		t.Errorf("default lease = %s, want %s (the syncer's default)", got, want)
	}
	o.SyncerLeaseNamespace = "Vnest_System"
	if err := o.validateFlags(); err == nil || !strings.Contains(err.Error(), `invalid --syncer-lease-namespace "Vnest_System"`) {
		t.Errorf("bad namespace: err = %v", err)
	}
	o.SyncerLeaseName = ""
	if err := o.validateFlags(); err != nil || o.syncerLease() != (types.NamespacedName{}) {
		t.Errorf("no lease name: err = %v, lease %q; want the check off", err, o.syncerLease())
	}
}

// TestMetricsFlags: --metrics-secure needs a metrics address to secure, and --metrics-cert-dir
// needs --metrics-secure, as the syncer's.
func TestMetricsFlags(t *testing.T) {
	for name, tc := range map[string]struct {
		addr, certDir string
		secure        bool
		wantErr       string // "" when valid
	}{
		"off":                       {addr: "0"},
		"plain":                     {addr: ":8080"},
		"secure":                    {addr: ":8443", secure: true},
		"secure with a cert dir":    {addr: ":8443", secure: true, certDir: "/certs"},
		"secure without metrics":    {addr: "0", secure: true, wantErr: "--metrics-secure secures the metrics address: set --metrics-bind-address too"},
		"a cert dir but not secure": {addr: ":8080", certDir: "/certs", wantErr: "--metrics-cert-dir is the certificate of the secure metrics address: set --metrics-secure too"},
	} {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			o.MetricsBindAddress, o.MetricsSecure, o.MetricsCertDir = tc.addr, tc.secure, tc.certDir
			err := o.validateFlags()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("validateFlags() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestMetricsServer: the manager's metrics server (securemetrics' of the options Run gives it,
// with the super cluster's config as the manager's) serves plain HTTP, open, by default; with
// --metrics-secure it serves HTTPS only and lets a request through only with a bearer token
// the super cluster's TokenReview authenticates (else 401) and whose user a SubjectAccessReview
// allows to get /metrics (else 403). The manager's ClusterRole (manifests/rbac, generated from the markers) lets it
// create both reviews.
func TestMetricsServer(t *testing.T) {
	super := testreviewer.Start(t, map[string][]string{"prometheus": {"/metrics"}})
	start := func(o *Options) string {
		srv, err := securemetrics.NewServer(o.metricsOptions(), super.Config())
		if err != nil {
			t.Fatal(err)
		}
		return testreviewer.Listen(t, srv)
	}

	o := NewOptions()
	o.MetricsBindAddress = "127.0.0.1:0"
	addr := start(o)
	if code, body := testreviewer.Get(t, http.DefaultClient, "http://"+addr+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "# HELP") {
		t.Errorf("plain: GET /metrics without a token = %d %.80q, want 200 with the series", code, body)
	}
	if asked := super.Asked(); len(asked) != 0 {
		t.Errorf("plain: the metrics server asked the super cluster for %v, want nothing", asked)
	}

	o.MetricsSecure = true
	addr = start(o)
	for _, tc := range []struct {
		token string
		want  int
	}{
		{token: "", want: http.StatusUnauthorized},
		{token: "forged", want: http.StatusUnauthorized},
		{token: "tenant-pod", want: http.StatusForbidden},
		{token: "prometheus", want: http.StatusOK},
	} {
		if code, body := testreviewer.Get(t, testreviewer.SelfSignedClient, "https://"+addr+"/metrics", tc.token); code != tc.want {
			t.Errorf("secure: GET /metrics with token %q = %d %.80q, want %d", tc.token, code, body, tc.want)
		}
	}
	if code, body := testreviewer.Get(t, http.DefaultClient, "http://"+addr+"/metrics", "prometheus"); code != http.StatusBadRequest {
		t.Errorf("secure: GET /metrics over plain HTTP = %d %.80q, want %d: HTTPS only", code, body, http.StatusBadRequest)
	}

	data, err := os.ReadFile("../manifests/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	if len(super.Asked()) != 2 {
		t.Errorf("a scrape asked the super cluster for %v; want a TokenReview and a SubjectAccessReview", super.Asked())
	}
	for _, gr := range super.Asked() {
		if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, gr.Group) && slices.Contains(r.Resources, gr.Resource) && slices.Contains(r.Verbs, "create")
		}) {
			t.Errorf("the ClusterRole %s does not allow create %s, which the secure metrics server does", role.Name, gr)
		}
	}
}
