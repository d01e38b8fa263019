package manager

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/cgroup"
)

func TestLocalLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    corev1.ResourceRequirements
		want cgroup.Limits
		args []string
	}{
		{"none", corev1.ResourceRequirements{}, cgroup.Limits{}, nil},
		{"requests only: nothing for a process", corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}}, cgroup.Limits{}, nil},
		{"cpu limit", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}},
			cgroup.Limits{MilliCPU: 1500}, []string{"--ready-max-procs=0"}},
		{"memory limit", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("500Mi")}},
			cgroup.Limits{MemoryBytes: 500 << 20}, []string{"--memory-limit=471859200"}},
		{"both", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("500Mi")}},
			cgroup.Limits{MilliCPU: 2000, MemoryBytes: 500 << 20}, []string{"--memory-limit=471859200", "--ready-max-procs=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := localLimits(tc.r); got != tc.want {
				t.Errorf("localLimits = %+v, want %+v", got, tc.want)
			}
			if got := limitArgs(tc.r); !reflect.DeepEqual(got, tc.args) {
				t.Errorf("limitArgs = %q, want %q", got, tc.args)
			}
		})
	}
}

// TestApplyLimitsWithoutCgroups: limits that cannot be enforced are a
// ProvisionFailed that says what to do; a tenant without limits does not
// need cgroups at all.
func TestApplyLimitsWithoutCgroups(t *testing.T) {
	p := &localProvisioner{cgroupsErr: errors.New("open /sys/fs/cgroup/cpu/vnest: permission denied")}
	vc := &v1alpha1.VirtualCluster{Status: v1alpha1.VirtualClusterStatus{ClusterKey: "a-1234"}}
	if err := p.applyLimits(vc, &localTenant{}); err != nil {
		t.Errorf("no limits: %v, want nil", err)
	}
	vc.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{Resources: &corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}
	err := p.applyLimits(vc, &localTenant{})
	var pe *phaseError
	if !errors.As(err, &pe) || pe.reason != v1alpha1.ReasonProvisionFailed ||
		!strings.Contains(pe.message, "permission denied") || !strings.Contains(pe.message, "remove the limits or run the manager as root") {
		t.Errorf("limits without cgroups: %v, want a ProvisionFailed that says why and what to do", err)
	}
}
