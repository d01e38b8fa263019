package fairqueue

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkAddGetDone is the cost of one key's trip through the queue with 10 busy tenants.
func BenchmarkAddGetDone(b *testing.B) {
	q := openQueue(time.Millisecond, time.Second)
	tenants := make([]string, 10)
	for i := range tenants {
		tenants[i] = fmt.Sprint("tenant-", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q.Add(tenants[i%len(tenants)], "ns/name")
		k, _ := q.Get()
		q.Done(k.Tenant, k.Item)
	}
}

// BenchmarkQuietTenantUnderFlood models the syncer's queue during BenchmarkSyncer's fairness
// phase, with sleeps for syncs, so the machine's speed does not enter: 16 workers, at most 2 per
// tenant; a flooding tenant queues 2,000 creates at once; a quiet tenant creates a pod every
// 100 ms for 5 s, and each of its creates, once synced, queues 8 updates (status, node, event…);
// every sync takes 30 ms. The quiet tenant's demand (9 keys × 10/s × 30 ms = 2.7 workers) is
// over its 2, as it was under the flood on this machine. Reported: how long its creates waited
// for a worker, p50 and p99 (and, as "updates", how long its updates did), with creates queued
// by AddUrgent (what the syncer does) and, for comparison, by Add (one lane); and ("slow") with
// AddUrgent while every create takes 250 ms, as the saturated super cluster answered the quiet
// tenant's pod creates in session 23 of 2026-12-06 (p90 270–320 ms), so that its creates alone
// need 2.5 workers.
func BenchmarkQuietTenantUnderFlood(b *testing.B) {
	for range b.N {
		for _, lane := range []struct {
			name       string
			urgent     bool
			createTime time.Duration
		}{{"urgent", true, 30 * time.Millisecond}, {"fifo", false, 30 * time.Millisecond}, {"slow", true, 250 * time.Millisecond}} {
			creates, updates := quietWaits(lane.urgent, lane.createTime)
			b.ReportMetric(ms(creates[len(creates)/2]), "ms-p50-"+lane.name)
			b.ReportMetric(ms(creates[len(creates)*99/100]), "ms-p99-"+lane.name)
			b.ReportMetric(ms(updates[len(updates)/2]), "ms-p50-updates-"+lane.name)
			b.ReportMetric(ms(updates[len(updates)*99/100]), "ms-p99-updates-"+lane.name)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// quietWaits runs the quiet tenant beside the flood and returns how long its creates and its
// updates waited for a worker, each sorted.
func quietWaits(urgent bool, createTime time.Duration) (creates, updates []time.Duration) {
	const (
		workers, perTenant = 16, 2
		floodCreates       = 2000
		quietCreates       = 50
		updatesPerCreate   = 8
		syncTime           = 30 * time.Millisecond
		gap                = 100 * time.Millisecond
	)
	q := openQueue(time.Millisecond, time.Second)
	q.LimitPerTenant(perTenant)
	add := func(tenant, item string, isNew bool) {
		if isNew && urgent {
			q.AddUrgent(tenant, item)
		} else {
			q.Add(tenant, item)
		}
	}
	for i := range floodCreates {
		add("flood", fmt.Sprint("create-", i), true)
	}
	var mu sync.Mutex
	queuedAt := map[string]time.Time{}
	var waits, updateWaits []time.Duration
	var wg, served sync.WaitGroup
	served.Add(quietCreates)
	for range workers {
		wg.Go(func() {
			for {
				k, shutdown := q.Get()
				if shutdown {
					return
				}
				if k.Tenant == "quiet" && strings.HasPrefix(k.Item, "update-") {
					mu.Lock()
					updateWaits = append(updateWaits, time.Since(queuedAt[k.Item]))
					mu.Unlock()
				}
				if n, ok := strings.CutPrefix(k.Item, "create-"); ok && k.Tenant == "quiet" {
					mu.Lock()
					waits = append(waits, time.Since(queuedAt[k.Item]))
					mu.Unlock()
					served.Done()
					time.Sleep(createTime)
					for u := range updatesPerCreate {
						item := fmt.Sprintf("update-%s-%d", n, u)
						mu.Lock()
						queuedAt[item] = time.Now()
						mu.Unlock()
						add("quiet", item, false)
					}
				} else if strings.HasPrefix(k.Item, "create-") {
					time.Sleep(createTime)
				} else {
					time.Sleep(syncTime)
				}
				q.Done(k.Tenant, k.Item)
			}
		})
	}
	for i := range quietCreates {
		item := fmt.Sprint("create-", i)
		mu.Lock()
		queuedAt[item] = time.Now()
		mu.Unlock()
		add("quiet", item, true)
		time.Sleep(gap)
	}
	served.Wait()
	q.ShutDown()
	wg.Wait()
	slices.Sort(waits)
	slices.Sort(updateWaits)
	return waits, updateWaits
}
