package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Limits
		v2   bool
		want []setting
	}{
		{"v1 none", Limits{}, false, []setting{
			{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", "-1"}, {"memory", "memory.limit_in_bytes", "-1"}}},
		{"v1 half a core and 1Gi", Limits{MilliCPU: 500, MemoryBytes: 1 << 30}, false, []setting{
			{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", "50000"}, {"memory", "memory.limit_in_bytes", "1073741824"}}},
		{"v1 two cores", Limits{MilliCPU: 2000}, false, []setting{
			{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", "200000"}, {"memory", "memory.limit_in_bytes", "-1"}}},
		{"v1 1m rounds up to the kernel's smallest quota", Limits{MilliCPU: 1}, false, []setting{
			{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", "1000"}, {"memory", "memory.limit_in_bytes", "-1"}}},
		{"v2 none", Limits{}, true, []setting{{"", "cpu.max", "max 100000"}, {"", "memory.max", "max"}}},
		{"v2 250m and 512Mi", Limits{MilliCPU: 250, MemoryBytes: 512 << 20}, true, []setting{
			{"", "cpu.max", "25000 100000"}, {"", "memory.max", "536870912"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := settings(tc.l, tc.v2); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("settings(%+v, v2=%v) = %v, want %v", tc.l, tc.v2, got, tc.want)
			}
		})
	}
}

func TestParseSelf(t *testing.T) {
	got := parseSelf("9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/user.slice\n0::/\n")
	want := map[string]string{"name=systemd": "/", "memory": "/process_api/abc", "cpu": "/user.slice", "cpuacct": "/user.slice"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseSelf = %v, want %v", got, want)
	}
}

// TestPlaceWritesFiles runs Place on ordinary directories laid out like the
// two kinds of hierarchy: what it writes where.
func TestPlaceWritesFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Hierarchy
		want map[string]string // file under the root → content
	}{
		{"v1 nests in the caller's groups", Hierarchy{V2: false, Self: map[string]string{"cpu": "/", "memory": "/m/x"}}, map[string]string{
			"cpu/vnest/t1/cpu.cfs_quota_us":             "50000",
			"cpu/vnest/t1/cpu.cfs_period_us":            "100000",
			"cpu/vnest/t1/cgroup.procs":                 "42",
			"memory/m/x/vnest/t1/memory.limit_in_bytes": "-1",
			"memory/m/x/vnest/t1/cgroup.procs":          "42",
		}},
		{"v2 under the root, controllers enabled on the way", Hierarchy{V2: true}, map[string]string{
			"cgroup.subtree_control":       "+cpu +memory",
			"vnest/cgroup.subtree_control": "+cpu +memory",
			"vnest/t1/cpu.max":             "50000 100000",
			"vnest/t1/memory.max":          "max",
			"vnest/t1/cgroup.procs":        "42",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.Root = t.TempDir()
			if err := tc.h.Place("t1", 42, Limits{MilliCPU: 500}); err != nil {
				t.Fatal(err)
			}
			for file, want := range tc.want {
				got, err := os.ReadFile(filepath.Join(tc.h.Root, file))
				if err != nil || string(got) != want {
					t.Errorf("%s = %q (%v), want %q", file, got, err, want)
				}
			}
		})
	}
}

func TestCounter(t *testing.T) {
	v1 := "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
	v2 := "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"
	for _, tc := range []struct {
		content, key string
		want         int64
		ok           bool
	}{
		{v1, "oom_kill", 3, true},
		{v2, "oom_kill", 2, true},
		{v2, "oom", 2, true},
		{"oom_kill_disable 0\n", "oom_kill", 0, false}, // kernels before 4.13
		{"oom_kill x\n", "oom_kill", 0, false},
	} {
		if got, ok := counter(tc.content, tc.key); got != tc.want || ok != tc.ok {
			t.Errorf("counter(%q, %q) = %d, %v; want %d, %v", tc.content, tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "open", Path: "/sys/fs/cgroup/cpu/vnest", Err: syscall.EACCES}, "needs root"},
		{&fs.PathError{Op: "mkdir", Path: "/sys/fs/cgroup/cpu/vnest", Err: syscall.EROFS}, "needs root"},
		{&fs.PathError{Op: "open", Path: "/sys/fs/cgroup/memory/x", Err: syscall.ENOENT}, "mounted"},
	} {
		got := explain(tc.err)
		if !errors.Is(got, tc.err) || !strings.Contains(got.Error(), tc.want) {
			t.Errorf("explain(%v) = %v, want it wrapped with %q", tc.err, got, tc.want)
		}
	}
}

// TestPlaceOnHost limits a real process in this host's hierarchy (needs
// root; CI runs as root) and reads the kernel's view of it.
func TestPlaceOnHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write /sys/fs/cgroup")
	}
	h, err := Host()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	name := "test-" + strconv.Itoa(os.Getpid())
	pid := cmd.Process.Pid
	if err := h.Place(name, pid, Limits{MilliCPU: 300, MemoryBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for c, group := range parseSelf(string(self)) {
		if (c == "cpu" || c == "memory" || c == "") && !strings.HasSuffix(group, "/"+Parent+"/"+name) {
			t.Errorf("the process's %q group is %s, want …/%s/%s", c, group, Parent, name)
		}
	}
	read := func(c, file string) string {
		b, err := os.ReadFile(filepath.Join(h.Dir(name, c), file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	cpu, memory := read("cpu", "cpu.cfs_quota_us"), read("memory", "memory.limit_in_bytes")
	if h.V2 {
		cpu, memory = read("", "cpu.max"), read("", "memory.max")
	}
	if wantCPU, wantMem := map[bool]string{false: "30000", true: "30000 100000"}[h.V2], "67108864"; cpu != wantCPU || memory != wantMem {
		t.Errorf("kernel's limits: cpu %q, memory %q; want %q, %q", cpu, memory, wantCPU, wantMem)
	}
	// Changed in place.
	if err := h.Place(name, pid, Limits{MilliCPU: 1500}); err != nil {
		t.Fatal(err)
	}
	if got := read("cpu", map[bool]string{false: "cpu.cfs_quota_us", true: "cpu.max"}[h.V2]); !strings.HasPrefix(got, "150000") {
		t.Errorf("after raising the limit the quota is %q, want 150000", got)
	}

	if err := h.Remove(name); err == nil {
		t.Error("Remove of a group with a running process succeeded")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := h.Remove(name); err != nil {
		t.Fatal(err)
	}
	for _, c := range controllers {
		if _, err := os.Stat(h.Dir(name, c)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after Remove: %v", h.Dir(name, c), err)
		}
	}
	if err := h.Remove(name); err != nil {
		t.Errorf("Remove of a group that is gone: %v", err)
	}
}
