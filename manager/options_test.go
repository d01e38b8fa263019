package manager

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
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
