package supercluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	criclient "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
)

// removePodSandboxes stops and removes every pod sandbox through CRI, the way
// kubelet would: that runs CNI DEL (frees IPs, removes the veth and portmap
// rules), kills containers and unmounts the sandbox netns and shm.
func (c *config) removePodSandboxes(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rs, err := criclient.NewRemoteRuntimeService(ctx, "unix://"+c.containerdSocket(), 10*time.Second, nil, false)
	if err != nil {
		return fmt.Errorf("connecting to containerd: %w", err)
	}
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var errs []string
	for _, sb := range sandboxes {
		if err := rs.StopPodSandbox(ctx, sb.Id); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := rs.RemovePodSandbox(ctx, sb.Id); err != nil {
			errs = append(errs, err.Error())
		}
	}
	logger.V(1).Info("Removed pod sandboxes", "count", len(sandboxes), "errors", len(errs))
	if len(errs) > 0 {
		return fmt.Errorf("removing pod sandboxes: %s", strings.Join(errs, "; "))
	}
	return nil
}

// killShims kills containerd-shim processes of this cluster that outlived
// containerd (they are deliberately detached from it).
func (c *config) killShims() {
	for _, pid := range c.processesMentioning(c.runDir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesMentioning lists processes other than this one whose command line
// contains s.
func (c *config) processesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder detaches every mount below the given directories, deepest
// first (kubelet leaves volume tmpfs mounts behind when it stops). kubelet's
// root dir is a bind mount in the host's shared peer group, so an unmount can
// reveal a propagated copy underneath: repeat until nothing is left.
func unmountUnder(dirs ...string) error {
	var errs []string
	for range 5 {
		targets, err := mountsUnder(dirs...)
		if err != nil || len(targets) == 0 {
			return err
		}
		errs = errs[:0]
		for _, t := range targets {
			if err := syscall.Unmount(t, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
				errs = append(errs, fmt.Sprintf("%s: %v", t, err))
			}
		}
	}
	left, _ := mountsUnder(dirs...)
	if len(left) > 0 {
		return fmt.Errorf("still mounted after unmounting: %s %s", strings.Join(left, ", "), strings.Join(errs, "; "))
	}
	return nil
}

// mountsUnder lists mount points at or below dirs, deepest first.
func mountsUnder(dirs ...string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				targets = append(targets, mp)
			}
		}
	}
	sort.SliceStable(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	return targets, sc.Err()
}

// unescapeMountPath undoes the octal escaping of /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deleteBridge removes the CNI bridge; the next start recreates it.
func deleteBridge() {
	_ = exec.Command("ip", "link", "delete", cniBridge).Run()
}

// kubeletChains are the iptables chains kubelet creates and never removes
// (kube-proxy's own chains go with `kube-proxy --cleanup`).
var kubeletChains = map[string][]string{
	"filter": {"KUBE-FIREWALL", "KUBE-KUBELET-CANARY"},
	"nat":    {"KUBE-KUBELET-CANARY"},
	"mangle": {"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"},
}

// removeKubeletChains deletes kubelet's chains and the rules jumping to them,
// so a stopped super cluster leaves the host's firewall as it found it.
func removeKubeletChains() {
	for _, tool := range []string{"iptables", "ip6tables"} {
		for table, chains := range kubeletChains {
			for _, chain := range chains {
				for _, builtin := range []string{"INPUT", "OUTPUT"} {
					for exec.Command(tool, "-w", "-t", table, "-D", builtin, "-j", chain).Run() == nil {
					}
				}
				_ = exec.Command(tool, "-w", "-t", table, "-F", chain).Run()
				_ = exec.Command(tool, "-w", "-t", table, "-X", chain).Run()
			}
		}
	}
}
