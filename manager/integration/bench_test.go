package integration

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/exepages"
	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// benchTenants is how many tenants BenchmarkTenantReady creates per round.
const benchTenants = 5

// BenchmarkTenantReady measures, for local tenants on the default storage,
// the time from creating a VirtualCluster to its kubeconfig Secret being
// usable (phase Running), and the idle memory of one tenant control-plane
// process. It is a measurement, not a timed test:
//
//	go test -run '^$' -bench TenantReady -benchtime 1x ./manager/integration/
//
// Metrics: s/ready-p50 and s/ready-max over the tenants of all rounds; of the
// first tenant's process 10 s after the last one was ready, MiB/idle-rss
// (VmRSS), MiB/idle-anon (RssAnon: its own memory) and MiB/idle-pss (its
// proportional set size: its own memory and its share of the pages of the
// vnest binary, which the other tenant processes map too — what one more
// tenant costs a host that runs several).
func BenchmarkTenantReady(b *testing.B) {
	c := superClient(b)
	// Tenants start from the binary as read from disk, not as `go build` left it in the page
	// cache (exepages.Evict).
	if err := exepages.Evict(layout.ControlPlaneBinary(super.binary)); err != nil {
		b.Fatal(err)
	}
	startManager(b, b.TempDir())
	var ready []time.Duration
	var firstKey string
	round := 0
	for b.Loop() {
		round++
		for i := range benchTenants {
			vc := newVC(fmt.Sprintf("bench-%d-%d", round, i))
			start := time.Now()
			if err := c.Create(b.Context(), vc); err != nil {
				b.Fatal(err)
			}
			waitRunning(b, c, vc)
			if err := tenantctl.Kubeconfig(b.Context(), c, tenantctl.KubeconfigOptions{Name: vc.Name, Namespace: vc.Namespace}, &bytes.Buffer{}); err != nil {
				b.Fatal(err)
			}
			ready = append(ready, time.Since(start))
			if firstKey == "" {
				firstKey = vc.Status.ClusterKey
			}
			b.Cleanup(func() {
				_ = tenantctl.Delete(b.Context(), c, tenantctl.DeleteOptions{Name: vc.Name, Namespace: vc.Namespace, Wait: true, Timeout: time.Minute}, &bytes.Buffer{})
			})
		}
	}
	b.StopTimer()
	slices.Sort(ready)
	b.ReportMetric(ready[len(ready)/2].Seconds(), "s/ready-p50")
	b.ReportMetric(ready[len(ready)-1].Seconds(), "s/ready-max")
	time.Sleep(10 * time.Second) // idle means idle: let start-up garbage go
	mem, err := processMemory("--etcd-prefix=/vnest/tenants/" + firstKey)
	if err != nil {
		b.Logf("idle memory: %v", err)
		return
	}
	b.ReportMetric(float64(mem["VmRSS"])/(1<<20), "MiB/idle-rss")
	b.ReportMetric(float64(mem["RssAnon"])/(1<<20), "MiB/idle-anon")
	b.ReportMetric(float64(mem["Pss"])/(1<<20), "MiB/idle-pss")
}

// processMemory reads VmRSS and RssAnon (from /proc/PID/status) and Pss (from
// /proc/PID/smaps_rollup), in bytes, of the process whose command line has arg.
func processMemory(arg string) (map[string]int64, error) {
	pid, _, err := findProcess(arg)
	if err != nil {
		return nil, err
	}
	mem := map[string]int64{}
	for _, file := range []string{"status", "smaps_rollup"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(data)) {
			f := strings.Fields(line)
			if len(f) != 3 || f[2] != "kB" {
				continue
			}
			if key := strings.TrimSuffix(f[0], ":"); key == "VmRSS" || key == "RssAnon" || key == "Pss" {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("/proc/%d/%s: %q: %w", pid, file, line, err)
				}
				mem[key] = kb << 10
			}
		}
	}
	for _, key := range []string{"VmRSS", "RssAnon", "Pss"} {
		if _, ok := mem[key]; !ok {
			return nil, fmt.Errorf("no %s for process %d", key, pid)
		}
	}
	return mem, nil
}
