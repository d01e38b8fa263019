package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Pod writes the super cluster refuses.
//
// A resize (podresize.go), an ephemeral container (podephemeral.go) or tolerations added in a
// down update (podplacement.go) that the super cluster refuses for good (superRefused, down.go:
// its admission or validation) would be refused again on every round, each time with an event.
// So the refusal is told to the tenant with a SuperClusterRejected event, and recorded on the
// super pod in an annotation (refusalAnnotations), which the down sync keeps
// (superKeptAnnotation, down.go); what is recorded stands, also after a syncer restart, and is
// not tried again until what refused it may have changed (refusalsDue):
//   - the VirtualCluster's spec.policy changed (its Pod Security level, which the super namespace
//     enforces), once the super namespace carries the policy's level (refusalCause): at once, as
//     a policy change queues the tenant's pods (changedKinds, tenant.go), or at the next patrol
//     when the namespace's update came after the pod's round;
//   - refusalRetryPeriod passed since the refusal: the super cluster's LimitRanges,
//     ResourceQuotas, webhooks and admission policies may have changed. The syncer does not watch
//     them (nor may it read the first two): a quota's status changes with every pod of its
//     namespace, and a webhook cannot be watched at all. The patrol brings every pod round once
//     a resync period, so a refusal is tried again at most once a refusalRetryPeriod: a refused
//     write and the record's, per pod and kind of refusal.
// A retry refused again is recorded anew without another event, unless the policy changed since
// the refusal it repeats: the tenant is told once per refusal and once per policy change, not
// once a period (refusedAgain). A retry that goes through needs nothing more: the super pod has
// what was asked, and a resize's PodResizePending=Infeasible goes with the record's match.
//
// A record is one line: the refused requests, comma-separated (names, or refusalHash of what was
// asked; retryMark in front of those due for retry), the time of the last refusal (RFC 3339),
// its refusalCause ("-" when not known), and the last refusal's message, if kept, each after a
// space. A record of an older syncer (requests and message only) is due for retry at once, and
// refused again tells nothing.

// refusalAnnotations are the annotations in which a super pod records what the super cluster
// refused of its tenant pod; the syncer writes them outside the down sync.
var refusalAnnotations = []string{annotationRefusedEphemeral, annotationRefusedResize, annotationRefusedTolerations}

// refusalRetryPeriod is how long a recorded refusal stands when its cause did not change: the
// super cluster may have lifted a limit the syncer does not see (a LimitRange, a ResourceQuota,
// a webhook) meanwhile.
const refusalRetryPeriod = 10 * time.Minute

// retryMark marks, in a record, a refused request that is due for retry (refusalsDue).
const retryMark = "~"

// refusalHash names a refused request by what it asked: a short hash of vs, as JSON.
func refusalHash(vs ...any) string {
	sum := sha256.New()
	for _, v := range vs {
		b, _ := json.Marshal(v) // API types always marshal
		sum.Write(b)
		sum.Write([]byte{0})
	}
	return hex.EncodeToString(sum.Sum(nil))[:16]
}

// refusal is a record of what the super cluster refused of a tenant pod, as an annotation of its
// super pod holds it.
type refusal struct {
	requests []string  // names or hashes of the refused requests; retryMark first when due for retry
	at       time.Time // when the last of them was refused; zero in an older syncer's record
	cause    string    // refusalCause when they were refused; "" when not known
	msg      string    // the last refusal's message, or ""
}

// parseRefusal reads a record (refusal.String); "" is no record.
func parseRefusal(v string) refusal {
	if v == "" {
		return refusal{}
	}
	if f := strings.SplitN(v, " ", 4); len(f) >= 3 {
		if at, err := time.Parse(time.RFC3339, f[1]); err == nil {
			r := refusal{requests: strings.Split(f[0], ","), at: at}
			if f[2] != "-" {
				r.cause = f[2]
			}
			if len(f) == 4 {
				r.msg = f[3]
			}
			return r
		}
	}
	reqs, msg, _ := strings.Cut(v, " ") // an older syncer's: requests and message
	return refusal{requests: strings.Split(reqs, ","), msg: msg}
}

// String is the record as an annotation holds it (parseRefusal).
func (r refusal) String() string {
	cause := r.cause
	if cause == "" {
		cause = "-"
	}
	v := strings.Join(r.requests, ",") + " " + r.at.UTC().Format(time.RFC3339) + " " + cause
	if r.msg != "" {
		v += " " + r.msg
	}
	return v
}

// stands reports whether r records request req as refused and not due for retry: a request
// due is recorded with retryMark in front, which no request's name or hash has.
func (r refusal) stands(req string) bool {
	return slices.Contains(r.requests, req)
}

// has reports whether r records request req, standing or due for retry.
func (r refusal) has(req string) bool {
	return slices.Contains(r.requests, req) || slices.Contains(r.requests, retryMark+req)
}

// refusalRecord is the record in annotation k of super pod sp.
func refusalRecord(sp *corev1.Pod, k string) refusal {
	return parseRefusal(sp.Annotations[k])
}

// refusalDue is r with every request marked due for retry when what refused it may have changed:
// refusalRetryPeriod has passed since now, or the cause is known (causeKnown) and not r's. ok
// reports whether that changed r.
func refusalDue(r refusal, cause string, causeKnown bool, now time.Time) (due refusal, ok bool) {
	if len(r.requests) == 0 || (now.Sub(r.at) < refusalRetryPeriod && (!causeKnown || r.cause == cause)) {
		return r, false
	}
	due = r
	due.requests = make([]string, len(r.requests))
	for i, req := range r.requests {
		due.requests[i] = retryMark + strings.TrimPrefix(req, retryMark)
	}
	return due, !slices.Equal(due.requests, r.requests)
}

// refusalsDue is super pod sp with the records due for retry marked so (refusalDue), or sp
// itself when none is. Everything the round does reads the marks: what is due is tried as if
// never refused, and a down update writes the marks with the rest of the pod, which is harmless:
// the requests marked are tried on the next round.
func refusalsDue(sp *corev1.Pod, cause string, causeKnown bool, now time.Time) *corev1.Pod {
	out := sp
	for _, k := range refusalAnnotations {
		if due, ok := refusalDue(refusalRecord(sp, k), cause, causeKnown, now); ok {
			out = withAnnotation(out, k, due.String())
		}
	}
	return out
}

// refusedAgain is record old with requests refused now (at, with msg, under cause) and the
// requests of old that keep (keep reports which: those the super pod has now go), and whether the
// tenant is to be told: a request old does not record, or a retry under a policy other than the
// one old's refusal was under. A retry refused again under the same policy, or with a cause not
// known then or now, tells nothing: the tenant heard of it.
func refusedAgain(old refusal, requests []string, keep func(req string) bool, at time.Time, cause, msg string) (refusal, bool) {
	tell := old.cause != "" && cause != "" && old.cause != cause
	out := refusal{at: at, cause: cause, msg: msg}
	for _, req := range old.requests {
		if name := strings.TrimPrefix(req, retryMark); !slices.Contains(requests, name) && keep(name) {
			out.requests = append(out.requests, req)
		}
	}
	for _, req := range requests {
		tell = tell || !old.has(req)
		out.requests = append(out.requests, req)
	}
	return out, tell
}

// refusalCause names what the syncer knows of what refuses tenant t's pods in super namespace
// ns: a hash of the VirtualCluster's spec.policy. known is false while the namespace's Pod
// Security level is not yet the policy's (the namespace's sync after a policy change is queued
// beside the pods'): a retry then would meet the old level. A namespace not in the cache has
// nothing to wait for.
func (s *Syncer) refusalCause(t *tenant, ns string) (cause string, known bool) {
	policy := t.settings.Load().policy
	if sn, err := s.superNS.Get(ns); err == nil && !podSecurityApplied(sn, policy) { // namespace.go
		return "", false
	}
	return refusalHash(policy), true
}

// withAnnotation returns a copy of super pod sp with annotation k set to v.
func withAnnotation(sp *corev1.Pod, k, v string) *corev1.Pod {
	out := sp.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[k] = v
	return out
}

// refused is super pod sp of tenant t recording requests in annotation k as refused now, with
// msg ("" keeps none), and those it recorded before that keep (refusedAgain), and whether the
// tenant is to be told.
func (s *Syncer) refused(t *tenant, sp *corev1.Pod, k string, requests []string, keep func(req string) bool, msg string) (*corev1.Pod, bool) {
	cause, _ := s.refusalCause(t, sp.Namespace)
	r, tell := refusedAgain(refusalRecord(sp, k), requests, keep, s.now(), cause, msg)
	return withAnnotation(sp, k, r.String()), tell
}

// withRefusalsDue is super pod sp of tenant t with its records due for retry now marked so
// (refusalsDue); sp itself when it records nothing, without looking at the policy.
func (s *Syncer) withRefusalsDue(t *tenant, sp *corev1.Pod) *corev1.Pod {
	if !slices.ContainsFunc(refusalAnnotations, func(k string) bool { return sp.Annotations[k] != "" }) {
		return sp
	}
	cause, known := s.refusalCause(t, sp.Namespace)
	return refusalsDue(sp, cause, known, s.now())
}

// recordRefused tells tenant pod tp that the super cluster refused what (refusal), if tell, and
// writes recorded, its super pod with the refusal recorded (refused). It reports whether it
// wrote; a super pod that changed meanwhile counts, as its event brings the next round.
func (s *Syncer) recordRefused(ctx context.Context, t *tenant, tp, recorded *corev1.Pod, tell bool, what string, refusal error) (bool, error) {
	if tell && t.recorder != nil {
		t.recorder.Eventf(tp, corev1.EventTypeWarning, "SuperClusterRejected", "The super cluster refused %s: %v", what, refusal)
	}
	if !tell {
		klog.FromContext(ctx).V(2).Info("Super cluster refused a retry again; the tenant was told before", "superObject", klog.KObj(recorded), "what", what, "err", refusal)
	}
	// The event goes first: a record that fails now brings it once more, never not at all.
	_, err := s.super.CoreV1().Pods(recorded.Namespace).Update(ctx, recorded, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		klog.FromContext(ctx).V(4).Info("Super pod changed meanwhile; its event brings the next round", "superObject", klog.KObj(recorded), "err", err)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording the refusal of %s: %w", what, err)
	}
	return true, nil
}
