package manager

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// DefaultFailureThreshold is how many health checks in a row a running
// control plane must fail before it counts as unhealthy
// (--control-plane-failure-threshold), like a kubelet probe's
// failureThreshold: with retryHealthCheck between them, one that stopped
// answering leaves Running about 20 s after its first failed check.
const DefaultFailureThreshold = 3

// healthFailures counts, per VirtualCluster, the health checks in a row
// that its ready control plane failed. It lives in memory: a restarted
// manager starts again from zero, which at worst gives a failing control
// plane a few more checks.
type healthFailures struct {
	mu sync.Mutex
	n  map[types.NamespacedName]int
}

// add counts one more failed check of key and returns how many in a row.
func (h *healthFailures) add(key types.NamespacedName) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[types.NamespacedName]int{}
	}
	h.n[key]++
	return h.n[key]
}

// reset forgets key's failures: its control plane answered, or it is being deleted.
func (h *healthFailures) reset(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.n, key)
}

// unhealthy is the failed health check of a control plane that was ready
// and was not restarted, the failures-th in a row. Below threshold it is
// stillReady: the syncer serves only Running tenants, and one slow /readyz
// (a GC pause, a busy host) must not stop a tenant's pods syncing. It is
// checked again after retryHealthCheck rather than retryStarting, so that
// threshold failures span a real outage and not a few seconds of one.
func unhealthy(endpoint, detail string, failures, threshold int) *phaseError {
	if failures < threshold {
		return &phaseError{
			reason: v1alpha1.ReasonControlPlaneUnhealthy,
			message: fmt.Sprintf("the tenant apiserver at %s was ready, but %d health check(s) in a row failed (it counts as unhealthy after %d): %s",
				endpoint, failures, threshold, detail),
			retryAfter: retryHealthCheck,
			stillReady: true,
		}
	}
	return &phaseError{
		reason:     v1alpha1.ReasonControlPlaneUnhealthy,
		message:    fmt.Sprintf("waiting for the tenant apiserver at %s to be ready (%d health checks in a row failed): %s", endpoint, failures, detail),
		retryAfter: retryStarting,
	}
}
