package fairqueue

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAddGetDone is the cost of one key's trip through the queue with 10 busy tenants.
func BenchmarkAddGetDone(b *testing.B) {
	q := New[string](time.Millisecond, time.Second)
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
