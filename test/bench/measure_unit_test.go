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
