package manager

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/cgroup"
)

// The local provisioner enforces spec.controlPlane.resources.limits as the
// kubelet does for the cluster provisioner's container: the child process
// gets a cgroup of its own (package internal/cgroup) with a CFS quota for
// the CPU limit and the memory limit, and `vnest apiserver` gets
// --memory-limit as in the container. Requests do not apply to a process.

// controlPlaneResources is spec.controlPlane.resources, or fallback when it
// is not set (the cluster provisioner's defaults; none for a local process).
func controlPlaneResources(vc *v1alpha1.VirtualCluster, fallback corev1.ResourceRequirements) corev1.ResourceRequirements {
	if cp := vc.Spec.ControlPlane; cp != nil && cp.Resources != nil {
		return *cp.Resources
	}
	return fallback
}

// localLimits are the cgroup limits of vc's local control plane.
func localLimits(r corev1.ResourceRequirements) cgroup.Limits {
	var l cgroup.Limits
	if cpu, ok := r.Limits[corev1.ResourceCPU]; ok {
		l.MilliCPU = cpu.MilliValue()
	}
	if mem, ok := r.Limits[corev1.ResourceMemory]; ok {
		l.MemoryBytes = mem.Value()
	}
	return l
}

// limitArgs are the `vnest apiserver` flags that go with resources r, with
// either provisioner: a memory limit becomes the Go soft memory limit, and a
// CPU limit leaves GOMAXPROCS to the Go runtime, which follows the cgroup's
// limit (also when it changes in place), instead of --ready-max-procs'
// default of one core.
func limitArgs(r corev1.ResourceRequirements) []string {
	var args []string
	if limit := goMemoryLimit(r); limit != "" {
		args = append(args, "--memory-limit="+limit)
	}
	if _, ok := r.Limits[corev1.ResourceCPU]; ok {
		args = append(args, "--ready-max-procs=0")
	}
	return args
}

// applyLimits gives lt's running process the limits of vc, or lifts them
// (the process stays in its group) when the spec no longer has any. A
// failure is a ProvisionFailed that says what to change: the control plane
// must not run without the limits it was given.
func (p *localProvisioner) applyLimits(vc *v1alpha1.VirtualCluster, lt *localTenant) error {
	limits := localLimits(controlPlaneResources(vc, corev1.ResourceRequirements{}))
	if limits.IsZero() && lt.group == "" {
		return nil
	}
	group := vc.Status.ClusterKey
	if group == "" {
		return fmt.Errorf("VirtualCluster %s/%s has no cluster key yet", vc.Namespace, vc.Name)
	}
	err := p.cgroupsErr
	if err == nil {
		err = p.cgroups.Place(group, lt.proc.Pid(), limits)
	}
	if err != nil {
		return failure(v1alpha1.ReasonProvisionFailed,
			"cannot enforce spec.controlPlane.resources.limits on the local control plane: %v; remove the limits or run the manager as root", err)
	}
	if lt.group == "" {
		// Kills before this process (an earlier manager's) are not its.
		lt.oomKills, _ = p.cgroups.OOMKills(group)
	}
	lt.group = group
	return nil
}

// explainExit adds to why lt's process exited that it went over its memory
// limit, when the kernel says so. The caller holds p.mu.
func (p *localProvisioner) explainExit(lt *localTenant, exit error) error {
	if lt.group == "" {
		return exit
	}
	kills, err := p.cgroups.OOMKills(lt.group)
	if err != nil || kills <= lt.oomKills {
		return exit
	}
	lt.oomKills = kills
	return fmt.Errorf("%w: the kernel killed it for going over spec.controlPlane.resources.limits.memory; raise the limit", exit)
}
