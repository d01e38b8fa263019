package bench

import (
	"fmt"
	"testing"
	"time"
)

// TestHistogramOf: a histogram's gain between two scrapes, its quantiles (bucket upper bounds)
// and when a series counts as having measured a disk stall.
func TestHistogramOf(t *testing.T) {
	const name = "etcd_disk_wal_fsync_duration_seconds"
	before := walFsyncs(t, 100, 110, 110, 111, 1.5)
	quiet := walFsyncs(t, 190, 210, 210, 211, 1.7)
	h := histogramOf(before, quiet, name)
	if h.count != 100 || h.quantile(0.5) != 0.001 || h.quantile(0.99) != 0.008 || h.quantile(1) != 0.008 {
		t.Errorf("count %v, p50 %v, p99 %v, max %v; want 100, 0.001, 0.008, 0.008", h.count, h.quantile(0.5), h.quantile(0.99), h.quantile(1))
	}
	if st := (diskSyncs{h}).stall(); st != 0 {
		t.Errorf("stall = %v without a slow fsync in the series (the one before it does not count)", st)
	}
	stalledAfter := walFsyncs(t, 190, 210, 210, 212, 2.5)
	if st := (diskSyncs{histogramOf(before, stalledAfter, name)}).stall(); st != 1.024 {
		t.Errorf("stall = %v, want 1.024 (an fsync of up to 1,024 ms in the series)", st)
	}
}

// walFsyncs is a scrape of etcd's WAL fsync histogram with the given cumulative counts at
// 1, 8, 128 and 1,024 ms (the last is also the total), parsed from the text format.
func walFsyncs(t *testing.T, le1ms, le8ms, le128ms, le1s int, sum float64) metricSamples {
	t.Helper()
	const h = "etcd_disk_wal_fsync_duration_seconds"
	body := fmt.Sprintf(`%[1]s_bucket{le="0.001"} %[2]d
%[1]s_bucket{le="0.008"} %[3]d
%[1]s_bucket{le="0.128"} %[4]d
%[1]s_bucket{le="1.024"} %[5]d
%[1]s_bucket{le="+Inf"} %[5]d
%[1]s_sum %[6]g
%[1]s_count %[5]d
`, h, le1ms, le8ms, le128ms, le1s, sum)
	m, err := parseMetrics([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestJudge: a disturbed figure is never a pass, and a phase is disturbed when the host took
// more than stealLimit of its CPU time.
func TestJudge(t *testing.T) {
	quiet := cpuUse{wall: 10 * time.Second, stolen: 0.1}.hostBusy()
	busy := cpuUse{wall: 10 * time.Second, stolen: 5}.hostBusy()
	if quiet != "" {
		t.Errorf("0.1 CPU-s of 10 s stolen: hostBusy = %q, want none", quiet)
	}
	if busy == "" {
		t.Error("5 CPU-s of 10 s stolen: hostBusy = \"\", want a reason")
	}
	cases := []struct {
		ok      bool
		reasons []string
		want    string
	}{
		{true, nil, "met"},
		{false, []string{""}, "NOT met"},
		{true, []string{"", "the disk"}, "not valid: the disk"},
		{false, []string{"the disk", "the host"}, "NOT met; the disk; the host"},
	}
	for _, c := range cases {
		if got := judge(c.ok, c.reasons...); got != c.want {
			t.Errorf("judge(%v, %q) = %q, want %q", c.ok, c.reasons, got, c.want)
		}
	}
}

// TestTenantsOf: the named tenants each, in the order given, the rest summed.
func TestTenantsOf(t *testing.T) {
	u := cpuUse{tenants: map[string]float64{"a": 1.5, "b": 4, "c": 0.25, "d": 0.5}}
	want := "tenant control planes' CPU-s: b 4.0, a 1.5, the other 2 0.8"
	if got := u.tenantsOf("b", "a"); got != want {
		t.Errorf("tenantsOf(b, a) = %q, want %q", got, want)
	}
}

// TestCPUBound: the least time the tenant phase's CPU time takes on the cores, and the CPU
// time the goal's time holds.
func TestCPUBound(t *testing.T) {
	direct := throughput{allIn: 18 * time.Second, cpu: cpuUse{ours: map[string]float64{"kube-apiserver": 16, "up": 8}}}
	tenant := throughput{allIn: 27 * time.Second, cpu: cpuUse{ours: map[string]float64{"apiserver": 20, "kube-apiserver": 18, "syncer": 6}}}
	want := "the tenant phase's 44.0 CPU-s take at least 22.0 s on 2 cores, a ratio of at least 1.22×; the goal's 19.8 s hold at most 39.6 CPU-s (the direct phase used 24.0)"
	if got := cpuBound(direct, tenant, 2); got != want {
		t.Errorf("cpuBound = %q\nwant %q", got, want)
	}
}

// TestTimelineOf: each stage's quantiles over all sets, the super side from the super tracker
// (by the set's super namespace) and the tenant side only for sets created elsewhere.
func TestTimelineOf(t *testing.T) {
	start := time.Now()
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	tracker := func() *podTracker {
		return &podTracker{firstSeen: map[string]time.Time{}, onNode: map[string]time.Time{}, running: map[string]time.Time{}}
	}
	super, tenant := tracker(), tracker()
	names := podNames("p", 10)
	for i, n := range names {
		s := float64(i + 1)
		super.firstSeen["k-ns/"+n], super.onNode["k-ns/"+n], super.running["k-ns/"+n] = at(s), at(s+10), at(s+20)
		tenant.firstSeen["ns/"+n], tenant.onNode["ns/"+n] = at(s/10), at(s+30)
		if i < 9 { // the last is not Running in the tenant yet
			tenant.running["ns/"+n] = at(s + 40)
		}
	}
	sets := []podSet{{ns: "ns", names: names, tracker: tenant, superNS: "k-ns"}}
	want := "super pod created 5.0 / 9.0 / 10.0, on a node 15.0 / 19.0 / 20.0, Running 25.0 / 29.0 / 30.0; tenant pod bound 35.0 / 39.0 / 40.0, Running 45.0 / 49.0 / 49.0" // 9 pods: p90 is the 9th
	if got := timelineOf(sets, super, start); got != want {
		t.Errorf("tenant sets: timelineOf = %q\nwant %q", got, want)
	}
	direct := []podSet{{ns: "k-ns", names: names, tracker: super, superNS: "k-ns"}}
	want = "super pod created 5.0 / 9.0 / 10.0, on a node 15.0 / 19.0 / 20.0, Running 25.0 / 29.0 / 30.0"
	if got := timelineOf(direct, super, start); got != want {
		t.Errorf("direct sets: timelineOf = %q\nwant %q", got, want)
	}
}

func TestSlowest(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	at := func(startMS, tookMS int) sample {
		start := t0.Add(time.Duration(startMS) * time.Millisecond)
		return sample{t0: start, seen: start.Add(time.Duration(tookMS) * time.Millisecond)}
	}
	s := series{samples: []sample{at(0, 40), at(100, 5), at(200, 7), at(1500, 30), at(2000, 6)}}
	want := "slowest 40.0 ms at 0.0 s, 30.0 ms at 1.5 s, 7.0 ms at 0.2 s of 2.0 s"
	if got := s.slowest(3); got != want {
		t.Errorf("slowest(3) = %q, want %q", got, want)
	}
	if got, want := (series{}).slowest(3), "no samples"; got != want {
		t.Errorf("slowest of no samples = %q, want %q", got, want)
	}
}
