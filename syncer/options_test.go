package syncer

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
)

func TestOptionsWorkersPerTenant(t *testing.T) {
	cases := map[string]struct {
		workers, perTenant int
		keepDefault        bool   // leave WorkersPerTenant at NewOptions' value
		want               int    // the queue's limit
		wantErr            string // "" when valid
	}{
		"default":                  {workers: 16, keepDefault: true, want: 2},
		"default with one worker":  {workers: 1, keepDefault: true, want: 1},
		"0 is half of the workers": {workers: 16, want: 8},
		"one worker still serves":  {workers: 1, want: 1},
		"odd count rounds down":    {workers: 5, want: 2},
		"explicit limit":           {workers: 16, perTenant: 3, want: 3},
		"limit of all workers":     {workers: 4, perTenant: 4, want: 4},
		"more than the workers":    {workers: 4, perTenant: 5, want: 4},
		"negative":                 {workers: 4, perTenant: -1, wantErr: "--workers-per-tenant must be at least 0"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			o.Workers = tc.workers
			if !tc.keepDefault {
				o.WorkersPerTenant = tc.perTenant
			}
			err := o.Validate()
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("Validate() = %v", err)
			default:
				if got := o.workersPerTenant(); got != tc.want {
					t.Errorf("workersPerTenant() = %d, want %d", got, tc.want)
				}
			}
		})
	}
}

func TestProtobufConfig(t *testing.T) {
	in := &rest.Config{Host: "https://x", QPS: 5}
	out := protobuf(in)
	if out.ContentType != "application/vnd.kubernetes.protobuf" || !strings.HasPrefix(out.AcceptContentTypes, "application/vnd.kubernetes.protobuf,") {
		t.Errorf("content types %q / %q, want protobuf first", out.ContentType, out.AcceptContentTypes)
	}
	if in.ContentType != "" || in.AcceptContentTypes != "" || out.Host != in.Host || out.QPS != in.QPS {
		t.Errorf("the original changed or the copy lost settings: %+v → %+v", in, out)
	}
}

func TestOptionsProfilingNeedsMetrics(t *testing.T) {
	for addr, wantErr := range map[string]bool{"0": true, "": true, "127.0.0.1:8080": false} {
		o := NewOptions()
		o.Profiling, o.MetricsBindAddress = true, addr
		if err := o.Validate(); (err != nil) != wantErr {
			t.Errorf("--profiling with --metrics-bind-address=%q: Validate() = %v, want an error: %v", addr, err, wantErr)
		}
	}
}

// TestOptionsMetricsSecure: --metrics-secure needs a metrics address to secure, and
// --metrics-cert-dir needs --metrics-secure.
func TestOptionsMetricsSecure(t *testing.T) {
	for name, tc := range map[string]struct {
		addr, certDir string
		secure        bool
		wantErr       string // "" when valid
	}{
		"secure":                    {addr: ":8085", secure: true},
		"secure with a cert dir":    {addr: ":8085", secure: true, certDir: "/certs"},
		"plain":                     {addr: "127.0.0.1:8085"},
		"secure without metrics":    {addr: "0", secure: true, wantErr: "--metrics-secure secures the metrics address: set --metrics-bind-address too"},
		"a cert dir but not secure": {addr: ":8085", certDir: "/certs", wantErr: "--metrics-cert-dir is the certificate of the secure metrics address"},
	} {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			o.MetricsBindAddress, o.MetricsSecure, o.MetricsCertDir = tc.addr, tc.secure, tc.certDir
			err := o.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestOptionsLease: the heartbeat Lease's flags default to the Lease the manager reads, and a
// name or namespace the API would refuse, or a duration renewed more often than every second, is
// refused at start.
func TestOptionsLease(t *testing.T) {
	for name, tc := range map[string]struct {
		set     func(*Options)
		wantErr string // "" when valid
	}{
		"defaults":         {set: func(*Options) {}},
		"no namespace":     {set: func(o *Options) { o.LeaseNamespace = "" }, wantErr: `invalid --lease-namespace ""`},
		"invalid name":     {set: func(o *Options) { o.LeaseName = "Vnest_Syncer" }, wantErr: `invalid --lease-name "Vnest_Syncer"`},
		"too short":        {set: func(o *Options) { o.LeaseDuration = 3 * time.Second }, wantErr: "--lease-duration must be at least 4s"},
		"shortest allowed": {set: func(o *Options) { o.LeaseDuration = 4 * time.Second }},
	} {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			tc.set(o)
			err := o.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if o := NewOptions(); o.LeaseNamespace != "vnest-system" || o.LeaseName != "vnest-syncer" || o.LeaseDuration != 40*time.Second {
		t.Errorf("defaults %s/%s for %v, want vnest-system/vnest-syncer for 40s (the manager's, manifests/syncer)", o.LeaseNamespace, o.LeaseName, o.LeaseDuration)
	}
}

// TestOptionsKubeletProxyMaxRequests: the kubelet proxy's limits are 256 per tenant and 2,048 in
// all unless the flags say otherwise, and must each let at least one request go.
func TestOptionsKubeletProxyMaxRequests(t *testing.T) {
	for name, tc := range map[string]struct {
		args      []string
		want      int // per tenant
		wantTotal int
		wantErr   string // "" when valid
	}{
		"default":    {want: 256, wantTotal: 2048},
		"set":        {args: []string{"--kubelet-proxy-max-requests-per-tenant=8", "--kubelet-proxy-max-requests=64"}, want: 8, wantTotal: 64},
		"zero":       {args: []string{"--kubelet-proxy-max-requests-per-tenant=0"}, wantErr: "--kubelet-proxy-max-requests-per-tenant must be at least 1, got 0"},
		"total zero": {args: []string{"--kubelet-proxy-max-requests=0"}, wantErr: "--kubelet-proxy-max-requests must be at least 1, got 0"},
	} {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("syncer", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && (o.KubeletProxyMaxRequestsPerTenant != tc.want || o.KubeletProxyMaxRequests != tc.wantTotal) {
				t.Errorf("KubeletProxyMaxRequestsPerTenant = %d, KubeletProxyMaxRequests = %d, want %d and %d",
					o.KubeletProxyMaxRequestsPerTenant, o.KubeletProxyMaxRequests, tc.want, tc.wantTotal)
			}
		})
	}
}
