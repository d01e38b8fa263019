package bench

import "testing"

// TestHistogramOf: a histogram's gain between two scrapes, its quantiles (bucket upper bounds)
// and when a series counts as having measured a disk stall.
func TestHistogramOf(t *testing.T) {
	const name = "etcd_disk_wal_fsync_duration_seconds"
	before := parseOrFail(t, `
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 100
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.008"} 110
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.128"} 110
etcd_disk_wal_fsync_duration_seconds_bucket{le="1.024"} 111
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 111
etcd_disk_wal_fsync_duration_seconds_sum 1.5
etcd_disk_wal_fsync_duration_seconds_count 111
`)
	quiet := parseOrFail(t, `
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 190
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.008"} 210
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.128"} 210
etcd_disk_wal_fsync_duration_seconds_bucket{le="1.024"} 211
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 211
etcd_disk_wal_fsync_duration_seconds_sum 1.7
etcd_disk_wal_fsync_duration_seconds_count 211
`)
	h := histogramOf(before, quiet, name)
	if h.count != 100 || h.quantile(0.5) != 0.001 || h.quantile(0.99) != 0.008 || h.quantile(1) != 0.008 {
		t.Errorf("count %v, p50 %v, p99 %v, max %v; want 100, 0.001, 0.008, 0.008", h.count, h.quantile(0.5), h.quantile(0.99), h.quantile(1))
	}
	if st := (diskSyncs{h}).stall(); st != 0 {
		t.Errorf("stall = %v without a slow fsync in the series (the one before it does not count)", st)
	}
	stalledAfter := parseOrFail(t, `
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 190
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.008"} 210
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.128"} 210
etcd_disk_wal_fsync_duration_seconds_bucket{le="1.024"} 212
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 212
etcd_disk_wal_fsync_duration_seconds_sum 2.5
etcd_disk_wal_fsync_duration_seconds_count 212
`)
	if st := (diskSyncs{histogramOf(before, stalledAfter, name)}).stall(); st != 1.024 {
		t.Errorf("stall = %v, want 1.024 (an fsync of up to 1,024 ms in the series)", st)
	}
}

func parseOrFail(t *testing.T, body string) metricSamples {
	t.Helper()
	m, err := parseMetrics([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
