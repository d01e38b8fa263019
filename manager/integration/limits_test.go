package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/cgroup"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// TestLocalLimits: spec.controlPlane.resources.limits of a local control
// plane are the kernel's limits of its process (read back from the cgroup
// files the process is in), a CPU change applies without a restart, and
// deleting the VirtualCluster removes the group.
func TestLocalLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		skipf(t, "the local provisioner's limits are cgroups, which need root")
	}
	h, err := cgroup.Host()
	if err != nil {
		t.Fatal(err)
	}
	c := superClient(t)
	stateDir := t.TempDir()
	startManager(t, stateDir)
	vc := newVC("limited")
	vc.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{Resources: &corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
	}}
	createAndWait(t, c, vc)
	key := vc.Status.ClusterKey
	stateArg := "--state-dir=" + filepath.Join(stateDir, "default", "limited")
	pid, args, err := findProcess(stateArg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("--memory-limit=%d", (1<<30)/10*9), "--ready-max-procs=0"} {
		if !slices.Contains(args, want) {
			t.Errorf("control plane args %q lack %s", args, want)
		}
	}
	self, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(self), "/"+cgroup.Parent+"/"+key+"\n") {
		t.Errorf("the control plane (pid %d) is not in group %s/%s:\n%s", pid, cgroup.Parent, key, self)
	}
	cpuFile, memFile := filepath.Join(h.Dir(key, "cpu"), "cpu.cfs_quota_us"), filepath.Join(h.Dir(key, "memory"), "memory.limit_in_bytes")
	wantCPU, wantMem := "50000", "1073741824"
	if h.V2 {
		cpuFile, memFile = filepath.Join(h.Dir(key, ""), "cpu.max"), filepath.Join(h.Dir(key, ""), "memory.max")
		wantCPU = "50000 100000"
	}
	if got := readTrimmed(t, cpuFile); got != wantCPU {
		t.Errorf("%s = %q, want %q", cpuFile, got, wantCPU)
	}
	if got := readTrimmed(t, memFile); got != wantMem {
		t.Errorf("%s = %q, want %q", memFile, got, wantMem)
	}

	patch := []byte(`{"spec":{"controlPlane":{"resources":{"limits":{"cpu":"1500m"}}}}}`)
	if err := c.Patch(t.Context(), newVC("limited"), client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the new CPU limit in "+cpuFile, func(context.Context) (bool, error) {
		return strings.HasPrefix(readTrimmed(t, cpuFile), "150000"), nil
	})
	if again, _, err := findProcess(stateArg); err != nil || again != pid {
		t.Errorf("the control plane was restarted for a CPU limit change: pid %d, before %d (%v)", again, pid, err)
	}

	if err := tenantctl.Delete(t.Context(), c, tenantctl.DeleteOptions{Name: "limited", Namespace: "default", Wait: true, Timeout: time.Minute}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.Dir(key, "cpu")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("group %s after the delete: %v, want it gone", h.Dir(key, "cpu"), err)
	}
}

// TestLocalMemoryLimitTooLow: a control plane killed for going over its
// memory limit says so in the VirtualCluster's condition, not only "killed".
func TestLocalMemoryLimitTooLow(t *testing.T) {
	if os.Geteuid() != 0 {
		skipf(t, "the local provisioner's limits are cgroups, which need root")
	}
	c := superClient(t)
	startManager(t, t.TempDir())
	vc := newVC("tight")
	vc.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{Resources: &corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}}
	if err := c.Create(t.Context(), vc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = tenantctl.Delete(context.WithoutCancel(t.Context()), c, tenantctl.DeleteOptions{Name: "tight", Namespace: "default", Wait: true, Timeout: time.Minute}, &strings.Builder{})
	})
	const want = "the kernel killed it for going over spec.controlPlane.resources.limits.memory; raise the limit"
	var last string
	waitUntilMsg(t, 90*time.Second, func() string { return "the condition to say the memory limit is too low; last: " + last },
		func(ctx context.Context) (bool, error) {
			got := &v1alpha1.VirtualCluster{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(vc), got); err != nil {
				return false, err
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionControlPlaneReady)
			if cond == nil {
				return false, nil
			}
			last = cond.Reason + ": " + cond.Message
			return cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, want), nil
		})
}

func readTrimmed(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
