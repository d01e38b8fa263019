package manager

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// DefaultFailureThreshold is how many resyncs in a row a running tenant
// must fail, for a reason that may pass by itself (transient), before it
// leaves Running (--control-plane-failure-threshold), like a kubelet
// probe's failureThreshold: with retryHealthCheck between them, a control
// plane that stopped answering leaves Running about 20 s after its first
// failed check.
const DefaultFailureThreshold = 3

// resyncFailures counts, per VirtualCluster, the resyncs in a row of a
// running tenant that failed for a transient reason: a failed health
// check, an etcd or super-cluster API call that failed. It lives in
// memory: a restarted manager starts again from zero, which at worst gives
// a failing tenant a few more resyncs.
type resyncFailures struct {
	mu sync.Mutex
	n  map[types.NamespacedName]int
}

// add counts one more failed resync of key and returns how many in a row.
func (f *resyncFailures) add(key types.NamespacedName) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[types.NamespacedName]int{}
	}
	f.n[key]++
	return f.n[key]
}

// failing reports whether key has failed resyncs counted: it was running
// and has not come through a resync since.
func (f *resyncFailures) failing(key types.NamespacedName) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[key] > 0
}

// reset forgets key's failures: a resync went through, or it is being deleted.
func (f *resyncFailures) reset(key types.NamespacedName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.n, key)
}

// graced is the transient failure pe of a running tenant's resync, the
// failures-th in a row. Below threshold it is stillReady: the syncer serves
// only Running tenants, and one slow /readyz (a GC pause, a busy host) or
// an etcd that missed one call must not stop a tenant's pods syncing. It
// is tried again after retryHealthCheck rather than at once, so that
// threshold failures span a real outage and not a few seconds of one.
func graced(pe *phaseError, failures, threshold int) *phaseError {
	if failures < threshold {
		return &phaseError{
			reason: pe.reason,
			message: fmt.Sprintf("still Running, but %d resync(s) in a row failed (it leaves Running after %d): %s",
				failures, threshold, pe.message),
			retryAfter: retryHealthCheck,
			stillReady: true,
			transient:  true,
		}
	}
	out := *pe
	out.message = fmt.Sprintf("%s (%d resyncs in a row failed)", pe.message, failures)
	return &out
}
