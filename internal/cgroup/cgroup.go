package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	// Parent is the group the groups of this package are in.
	Parent = "vnest"
	// cfsPeriod is the kubelet's CFS period, in microseconds.
	cfsPeriod = 100000
	// minQuota is the smallest CFS quota the kernel takes, in microseconds
	// (the kubelet rounds up to it as well).
	minQuota = 1000
)

// Limits are a process's limits; 0 is none.
type Limits struct {
	MilliCPU    int64 // CPU in thousandths of a core
	MemoryBytes int64
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return l.MilliCPU <= 0 && l.MemoryBytes <= 0 }

// Hierarchy is a cgroup file system.
type Hierarchy struct {
	// Root is where it is mounted: /sys/fs/cgroup on the host.
	Root string
	// V2 is the unified hierarchy; otherwise v1, one hierarchy per
	// controller at Root/<controller>.
	V2 bool
	// Self is the caller's own group per v1 controller ("cpu", "memory"),
	// as in /proc/self/cgroup; unused with v2.
	Self map[string]string
}

// Host returns this host's hierarchy.
func Host() (Hierarchy, error) {
	h := Hierarchy{Root: "/sys/fs/cgroup"}
	if _, err := os.Stat(filepath.Join(h.Root, "cgroup.controllers")); err == nil {
		h.V2 = true
		return h, nil
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return h, fmt.Errorf("reading this process's cgroups: %w", err)
	}
	h.Self = parseSelf(string(data))
	return h, nil
}

// parseSelf reads /proc/<pid>/cgroup ("4:memory:/a/b", "3:cpu,cpuacct:/")
// into the group of each v1 controller.
func parseSelf(s string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c != "" {
				out[c] = parts[2]
			}
		}
	}
	return out
}

// controllers are the v1 hierarchies a group is made in.
var controllers = []string{"cpu", "memory"}

// Dir is the directory of group name for a v1 controller ("cpu",
// "memory"); with v2 the controller does not matter.
func (h Hierarchy) Dir(name, controller string) string {
	if h.V2 {
		return filepath.Join(h.Root, Parent, name)
	}
	return filepath.Join(h.Root, controller, h.Self[controller], Parent, name)
}

// dirs are the directories of group name: one per v1 controller, the one
// group with v2.
func (h Hierarchy) dirs(name string) []string {
	if h.V2 {
		return []string{h.Dir(name, "")}
	}
	out := make([]string, len(controllers))
	for i, c := range controllers {
		out[i] = h.Dir(name, c)
	}
	return out
}

// setting is a value for a file of a group; controller is "" with v2.
type setting struct{ controller, file, value string }

// settings are the files that give a group the limits l (and take away the
// ones l does not have), in the order they are written.
func settings(l Limits, v2 bool) []setting {
	quota, memory := "-1", "-1"
	if v2 {
		quota, memory = "max", "max"
	}
	if l.MilliCPU > 0 {
		quota = strconv.FormatInt(max(l.MilliCPU*cfsPeriod/1000, minQuota), 10)
	}
	if l.MemoryBytes > 0 {
		memory = strconv.FormatInt(l.MemoryBytes, 10)
	}
	period := strconv.Itoa(cfsPeriod)
	if v2 {
		return []setting{{"", "cpu.max", quota + " " + period}, {"", "memory.max", memory}}
	}
	return []setting{
		{"cpu", "cpu.cfs_period_us", period},
		{"cpu", "cpu.cfs_quota_us", quota},
		{"memory", "memory.limit_in_bytes", memory},
	}
}

// Place puts process pid (all its threads) into group name with limits l.
// The group is made if need be; calling it again changes the limits in
// place, without restarting anything.
func (h Hierarchy) Place(name string, pid int, l Limits) error {
	if h.V2 {
		// Children of a v2 group get a controller only when the group
		// enables it for its subtree.
		for _, dir := range []string{h.Root, filepath.Join(h.Root, Parent)} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return explain(err)
			}
			if err := write(filepath.Join(dir, "cgroup.subtree_control"), "+cpu +memory"); err != nil {
				return err
			}
		}
	}
	for _, dir := range h.dirs(name) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return explain(err)
		}
	}
	for _, s := range settings(l, h.V2) {
		if err := write(filepath.Join(h.Dir(name, s.controller), s.file), s.value); err != nil {
			return err
		}
	}
	for _, dir := range h.dirs(name) {
		if err := write(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Remove removes group name, whose processes must have exited; a group
// that does not exist is not an error.
func (h Hierarchy) Remove(name string) error {
	var errs []error
	for _, dir := range h.dirs(name) {
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
		}
		// The parent too once it is empty; it is made again when needed.
		_ = syscall.Rmdir(filepath.Dir(dir))
	}
	return errors.Join(errs...)
}

// OOMKills is how many times the kernel killed a process of group name
// for going over its memory limit.
func (h Hierarchy) OOMKills(name string) (int64, error) {
	file := filepath.Join(h.Dir(name, "memory"), "memory.oom_control")
	if h.V2 {
		file = filepath.Join(h.Dir(name, ""), "memory.events")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	n, ok := counter(string(data), "oom_kill")
	if !ok {
		return 0, fmt.Errorf("no oom_kill count in %s", file)
	}
	return n, nil
}

// counter is the value of key in the "key value" lines of a cgroup file.
func counter(content, key string) (int64, bool) {
	for line := range strings.SplitSeq(content, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func write(file, value string) error {
	if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, file, explain(err))
	}
	return nil
}

// explain adds what to do to the errors that have a usual cause.
func explain(err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w (setting cgroup limits needs root and a writable /sys/fs/cgroup)", err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (is the cgroup controller mounted?)", err)
	}
	return err
}
