// Package cgroup limits a process's CPU and memory the way the kubelet limits a
// container: a CPU limit is a CFS quota per 100 ms period, a memory limit is the
// group's memory limit (past it the kernel reclaims, then kills). The manager's
// local provisioner uses it for spec.controlPlane.resources.limits of a tenant
// control plane that runs as a child process.
//
// Each process gets a group of its own named by the caller, under a "vnest"
// group:
//   - cgroup v1: under the caller's own group of the cpu and memory
//     hierarchies (/proc/self/cgroup), so the limits nest in whatever limits
//     the manager already has (under systemd, run the manager with
//     Delegate=yes, so systemd leaves groups it did not make alone);
//   - cgroup v2: under the root of the unified hierarchy, as Docker's cgroupfs
//     driver does, since v2 forbids a group with processes (the manager's own)
//     from also having children with controllers.
//
// Writing cgroups needs root (or a delegated hierarchy); the error then says so.
// Only limits are set: requests have no equivalent for a single process that
// competes with the rest of the host, and the kubelet's CPU shares for them
// would put a tenant far below any root-level process.
package cgroup
