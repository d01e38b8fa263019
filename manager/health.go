package manager

import (
	"cmp"
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// DefaultFailureThreshold is how many resyncs in a row a running tenant
// must fail, for a reason that may pass by itself (transient), before it
// leaves Running (--control-plane-failure-threshold), like a kubelet
// probe's failureThreshold: with retryHealthCheck between them, a control
// plane that stopped answering leaves Running about 20 s after its first
// failed check. A tenant whose other steps fail so leaves Running only once
// its control plane does not answer either (transientWhileRunning).
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

// transientWhileRunning is pe, a transient failure of a running tenant's
// resync, as it is recorded: graced, and at the threshold, unless what
// failed is the control plane's health check itself (ControlPlaneUnhealthy),
// the tenant stays Running while its control plane answers (checkedRunning).
// A step before the health check that failed so (the super cluster's API
// timing out on the tenant's Secrets or Deployment, its etcd not answering
// the manager) says nothing of the control plane as it runs, and a blip of
// the super cluster's API must not take every tenant out of Running, which
// stops the syncer serving them all. The count is not started again then,
// so each further failed resync checks again, every retryHealthCheck.
func (r *Reconciler) transientWhileRunning(ctx context.Context, s *scope, pe *phaseError) *phaseError {
	failures, threshold := r.resyncFailures.add(client.ObjectKeyFromObject(s.vc)), r.threshold()
	if failures < threshold || pe.reason == v1alpha1.ReasonControlPlaneUnhealthy {
		return graced(pe, failures, threshold)
	}
	out, answers := r.checkedRunning(ctx, s, pe, fmt.Sprintf("%d resyncs in a row failed: %s", failures, pe.message))
	if answers {
		out.retryAfter = retryHealthCheck
		return out
	}
	return graced(out, failures, threshold)
}

// refusedWhileRunning is pe, a write the super cluster refused in a running
// tenant's resync (a ResourceQuota or a webhook an operator added to the
// namespace, a spec change that makes an invalid object), as it is
// recorded. The refusal stops the steps after it but changes nothing of the
// control plane that runs, and the syncer serves only Running tenants: while
// the control plane answers its health check, the tenant stays Running
// (checkedRunning), and it is tried again every retryFailure. A failed
// health check is counted as in graced, and the threshold-th makes the
// tenant Failed with the refusal's reason: nothing serves it then, and what
// would change that is refused.
func (r *Reconciler) refusedWhileRunning(ctx context.Context, s *scope, pe *phaseError) *phaseError {
	key := client.ObjectKeyFromObject(s.vc)
	out, answers := r.checkedRunning(ctx, s, pe, pe.message)
	if answers {
		// The control plane answered: no failure in a row of it.
		r.resyncFailures.reset(key)
		return out
	}
	return graced(out, r.resyncFailures.add(key), r.threshold())
}

// checkedRunning checks the control plane of a running tenant whose resync
// failed with pe at a step other than the health check (checkRunning) and
// reports whether it answers. It answers: pe is stillReady, the condition it
// concerns True with "still Running (the tenant apiserver at … is ready),
// but " and what in its message, and a Warning event says it. It does not:
// pe with the check's failure added, transient, for graced.
func (r *Reconciler) checkedRunning(ctx context.Context, s *scope, pe *phaseError, what string) (*phaseError, bool) {
	out := *pe
	if err := r.checkRunning(ctx, s); err != nil {
		out.message = fmt.Sprintf("%s; and the tenant apiserver at %s failed its health check: %v", pe.message, s.vc.Status.Endpoint, err)
		out.transient = true
		return &out, false
	}
	out.message = fmt.Sprintf("still Running (the tenant apiserver at %s is ready), but %s", s.vc.Status.Endpoint, what)
	out.stillReady = true
	return &out, true
}

// threshold is the failure threshold of the resyncs of a running tenant.
func (r *Reconciler) threshold() int { return cmp.Or(r.failureThreshold, DefaultFailureThreshold) }

// checkRunning checks the health of a running tenant's control plane as it
// runs, whatever step of the resync stopped: this reconcile's check if it
// got that far (reconcileControlPlane), else one at the endpoint with the
// admin credentials of the PKI Secret as it is (a refused write of it left
// the old ones, which the control plane serves with).
func (r *Reconciler) checkRunning(ctx context.Context, s *scope) error {
	if s.answered {
		return nil
	}
	pki := s.pki
	if pki == nil {
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.vc.Namespace, Name: s.vc.PKISecretName()}, secret); err != nil {
			return fmt.Errorf("reading Secret %s/%s: %w", s.vc.Namespace, s.vc.PKISecretName(), err)
		}
		pki = secret.Data
	}
	return r.checkReady(ctx, s.vc.Status.Endpoint, adminFrom(pki))
}
