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

	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// benchTenants is how many tenants BenchmarkTenantReady creates per round.
const benchTenants = 5

// BenchmarkTenantReady measures, for local tenants on the default storage,
// the time from creating a VirtualCluster to its kubeconfig Secret being
// usable (phase Running), and the idle RSS of one tenant control-plane
// process. It is a measurement, not a timed test:
//
//	go test -run '^$' -bench TenantReady -benchtime 1x ./manager/integration/
//
// Metrics: s/ready-p50 and s/ready-max over the tenants of all rounds,
// MiB/idle-rss of the first tenant's process 10 s after the last one was
// ready.
func BenchmarkTenantReady(b *testing.B) {
	c := superClient(b)
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
	if rss, err := processRSS("--etcd-prefix=/vnest/tenants/" + firstKey); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "MiB/idle-rss")
	} else {
		b.Logf("idle RSS: %v", err)
	}
}

// processRSS is the resident set of the process whose command line has arg.
func processRSS(arg string) (int64, error) {
	pid, _, err := findProcess(arg)
	if err != nil {
		return 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
