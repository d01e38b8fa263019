package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	quota "k8s.io/apiserver/pkg/quota/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	quotacore "k8s.io/kubernetes/pkg/quota/v1/evaluator/core"
	psapi "k8s.io/pod-security-admission/api"
	pspolicy "k8s.io/pod-security-admission/policy"
	"k8s.io/utils/clock"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// Pod policy: what the VirtualCluster's spec.policy allows, checked by the syncer before a
// tenant pod goes down, so a refusal is explained in the tenant and nothing is created.
//
//   - Pod Security: the pod as it would run in the super cluster (translatePod) must pass the
//     policy's Pod Security Standards level (default baseline) at the latest version. Baseline
//     refuses privileged containers, hostNetwork/hostPID/hostIPC, hostPath volumes, host ports
//     and added capabilities; only the privileged level allows them. The super namespace is
//     labelled to enforce the same level (namespace.go), so the super cluster's admission
//     refuses what might slip past here.
//   - Quota: spec.policy.quota is the hard limit of the tenant's usage in the super cluster, over
//     all its namespaces together, in ResourceQuota terms (pods, requests.cpu, limits.memory,
//     count/pods, …). A pod is admitted only if the tenant's usage (its non-terminal super pods
//     plus the pods admitted but not yet in the cache) plus the pod's fits; otherwise it waits
//     and is retried every quotaRetry and whenever the patrol passes, so it goes down as soon as
//     capacity frees up.
//   - Node selector and tolerations are merged into the super pod (translatePod). A nodeName the
//     tenant sets itself is kept when the policy allows the pod on that super node (placePod):
//     the super kubelet then admits or rejects the pod, as in any cluster. Otherwise it becomes a
//     required node affinity on that node (pinToNode), so the super scheduler applies the
//     policy's node selector and the node's taints, and the pod waits.
//
// A refused pod stays Pending in the tenant with condition PodScheduled=False (reason
// PodSecurityViolation or TenantQuotaExceeded, the message says what to change) and a Warning
// event of the same reason: api/v1alpha1's PodReason* constants, with PodReasonSuperRejected when the
// super cluster itself refused the pod.

// quotaRetry is how soon a pod waiting for quota is looked at again.
const quotaRetry = 5 * time.Second

// podSecurityEvaluator is the upstream Pod Security evaluator with its default checks.
var podSecurityEvaluator = sync.OnceValues(func() (pspolicy.Evaluator, error) {
	return pspolicy.NewEvaluator(pspolicy.DefaultChecks(), nil)
})

// podSecurityViolation returns why pod breaks the Pod Security level, or "" if it passes.
func podSecurityViolation(p *corev1.Pod, level v1alpha1.PodSecurityLevel) (string, error) {
	if level == "" {
		level = v1alpha1.PodSecurityBaseline
	}
	lvl, err := psapi.ParseLevel(string(level))
	if err != nil {
		return "", err
	}
	if lvl == psapi.LevelPrivileged {
		return "", nil
	}
	ev, err := podSecurityEvaluator()
	if err != nil {
		return "", err
	}
	lv := psapi.LevelVersion{Level: lvl, Version: psapi.LatestVersion()}
	agg := pspolicy.AggregateCheckResults(ev.EvaluatePod(lv, &p.ObjectMeta, &p.Spec))
	if agg.Allowed {
		return "", nil
	}
	return fmt.Sprintf("violates PodSecurity %q of this virtual cluster: %s", lv.String(), agg.ForbiddenDetail()), nil
}

// podUsage is what a pod counts against a quota, as the ResourceQuota controller counts it.
func podUsage(p *corev1.Pod) corev1.ResourceList {
	if !quotacore.QuotaV1Pod(p, clock.RealClock{}) {
		return corev1.ResourceList{}
	}
	u, err := quotacore.PodUsageFunc(p, clock.RealClock{})
	if err != nil { // only for a non-pod
		return corev1.ResourceList{}
	}
	return u
}

// quotaViolation returns why adding usage add to used exceeds hard, or "" if it fits. Only the
// resources hard names count.
func quotaViolation(hard, used, add corev1.ResourceList) string {
	names := quota.ResourceNames(hard)
	want := quota.Add(quota.Mask(used, names), quota.Mask(add, names))
	if ok, exceeded := quota.LessThanOrEqual(want, hard); !ok {
		slices.Sort(exceeded)
		var parts []string
		for _, n := range exceeded {
			u, r, h := used[n], add[n], hard[n]
			parts = append(parts, fmt.Sprintf("%s: requested %s, used %s, limited %s", n, r.String(), u.String(), h.String()))
		}
		return "exceeds the quota of this virtual cluster (spec.policy.quota): " + strings.Join(parts, "; ")
	}
	return ""
}

// placePod decides how a pod that the tenant put on a node itself (spec.nodeName) gets there in
// the super cluster. It goes directly, as such a pod does in any cluster, when node is the super
// node of that name and the policy allows the pod there: the node is schedulable (not cordoned),
// matches the pod's node selector and required affinity (the policy's selector merged in) and
// has no NoSchedule or NoExecute taint the pod does not tolerate. The super kubelet then admits
// or rejects it (a host port taken, not enough capacity: the pod fails, and its controller
// replaces it). Otherwise the name becomes a node affinity (pinToNode) and the super scheduler
// keeps the pod Pending until the node can take it; node is nil when there is no such node.
func placePod(spec *corev1.PodSpec, node *corev1.Node) {
	if spec.NodeName == "" || (node != nil && node.Name == spec.NodeName && nodeAllows(spec, node)) {
		return
	}
	pinToNode(spec)
}

// nodeAllows reports whether a scheduler honouring the pod's selectors and tolerations could
// put it on node, capacity and host ports aside (the kubelet checks those).
func nodeAllows(spec *corev1.PodSpec, node *corev1.Node) bool {
	if node.Spec.Unschedulable {
		return false
	}
	if ok, err := nodeaffinity.GetRequiredNodeAffinity(&corev1.Pod{Spec: *spec}).Match(node); err != nil || !ok {
		return false
	}
	_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false)
	return !untolerated
}

// pinToNode turns a nodeName the tenant set into a required node affinity on that node: the
// super scheduler then places the pod there only if the policy's node selector, the node's
// taints and its capacity allow it, instead of the pod bypassing scheduling.
func pinToNode(spec *corev1.PodSpec) {
	node := spec.NodeName
	if node == "" {
		return
	}
	spec.NodeName = ""
	requireInEveryTerm(spec, corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}})
}

// podNode is the super node a super pod runs on or is bound for: its nodeName, or, while the
// super scheduler has not placed it, the node pinToNode pinned it to. The tenant pod is bound
// to that node already, so the tenant needs its virtual Node meanwhile: a pod bound to a node
// the tenant does not have is deleted by the tenant's pod garbage collector.
func podNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	return pinnedNode(&p.Spec)
}

// pinnedNode is the node pinToNode pinned spec to: the one node that every term of its required
// node affinity names by metadata.name, or "".
func pinnedNode(spec *corev1.PodSpec) string {
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	node := ""
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		i := slices.IndexFunc(term.MatchFields, func(r corev1.NodeSelectorRequirement) bool {
			return r.Key == metav1.ObjectNameField && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1
		})
		if i < 0 || node != "" && term.MatchFields[i].Values[0] != node {
			return ""
		}
		node = term.MatchFields[i].Values[0]
	}
	return node
}

// requireInEveryTerm adds req to every term of spec's required node affinity (the terms are
// ORed, so each must have it), making a term when there is none.
func requireInEveryTerm(spec *corev1.PodSpec, req corev1.NodeSelectorRequirement) {
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
	}
	terms := &na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(*terms) == 0 {
		*terms = []corev1.NodeSelectorTerm{{}}
	}
	for i := range *terms {
		(*terms)[i].MatchFields = append((*terms)[i].MatchFields, req)
	}
}

// quotaLedger serializes one tenant's quota admissions and remembers the pods it admitted that
// the super cache does not show yet, so that pods admitted in a row all count.
type quotaLedger struct {
	mu      sync.Mutex
	pending map[string]admitted // by super "namespace/name"
}

// admitted is a pod the ledger let through: its usage and when. An entry the cache does not
// confirm within pendingTTL (the create wrote nothing, e.g. a foreign object had the name) is
// dropped.
type admitted struct {
	usage corev1.ResourceList
	at    time.Time
}

const pendingTTL = time.Minute

// admitPod checks the super pod desired against the tenant's policy. It returns the refusal
// reason and message, or "" when the pod may be created; then release must be called after the
// create (ok reports whether it succeeded). With a quota the tenant's admissions are serialized
// from admitPod to release.
func (s *Syncer) admitPod(t *tenant, desired *corev1.Pod) (reason, msg string, release func(ok bool), err error) {
	policy := t.settings.Load().policy
	if msg, err := podSecurityViolation(desired, policy.PodSecurityLevel); err != nil || msg != "" {
		return v1alpha1.PodReasonSecurityViolation, msg, nil, err
	}
	if len(policy.Quota) == 0 {
		return "", "", func(bool) {}, nil
	}
	l := &t.quota
	l.mu.Lock()
	used, err := s.tenantUsage(t)
	if err != nil {
		l.mu.Unlock()
		return "", "", nil, err
	}
	add := podUsage(desired)
	if msg := quotaViolation(policy.Quota, used, add); msg != "" {
		l.mu.Unlock()
		return v1alpha1.PodReasonQuotaExceeded, msg, nil, nil
	}
	key := desired.Namespace + "/" + desired.Name
	return "", "", func(ok bool) {
		if ok {
			if l.pending == nil {
				l.pending = map[string]admitted{}
			}
			l.pending[key] = admitted{usage: add, at: s.now()}
		}
		l.mu.Unlock()
	}, nil
}

// tenantUsage is tenant t's usage against its quota: its super pods in the cache and the pods
// admitted that the cache does not show yet. The caller holds t.quota.mu.
func (s *Syncer) tenantUsage(t *tenant) (corev1.ResourceList, error) {
	l := &t.quota
	used := corev1.ResourceList{}
	inCache := map[string]bool{}
	if idx := s.superIndex[kindPod]; idx != nil {
		objs, err := idx.ByIndex(indexTenant, t.key)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok {
				inCache[p.Namespace+"/"+p.Name] = true
				used = quota.Add(used, podUsage(p))
			}
		}
	}
	for k, a := range l.pending {
		if inCache[k] || s.now().Sub(a.at) > pendingTTL {
			delete(l.pending, k)
			continue
		}
		used = quota.Add(used, a.usage)
	}
	return used, nil
}

// refusePod keeps a tenant pod Pending with condition PodScheduled=False saying why and, with
// event, records a Warning event when the reason or message is new.
func (s *Syncer) refusePod(ctx context.Context, t *tenant, tp *corev1.Pod, reason, msg string, event bool) error {
	for _, c := range tp.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == reason && c.Message == msg {
			return nil
		}
	}
	klog.FromContext(ctx).V(2).Info("Pod refused by the virtual cluster's policy", "reason", reason, "message", msg)
	if event && t.recorder != nil {
		t.recorder.Event(tp, corev1.EventTypeWarning, reason, msg)
	}
	up := tp.DeepCopy()
	up.Status.Phase = corev1.PodPending
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(s.now())}
	if i := slices.IndexFunc(up.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodScheduled }); i >= 0 {
		up.Status.Conditions[i] = cond
	} else {
		up.Status.Conditions = append(up.Status.Conditions, cond)
	}
	_, err := t.client.CoreV1().Pods(tp.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	return inTenant(ignoreNotFound(err))
}

// createPodDown is the policy gate in front of the down sync's create of a super pod: it admits
// the pod or refuses it in the tenant, and after a create marks a super refusal on the pod too.
func (s *Syncer) createPodDown(ctx context.Context, t *tenant, tp *corev1.Pod, create func() error) error {
	if msg, err := s.runtimeClassGate(ctx, t, tp); err != nil || msg != "" { // runtimeclass.go
		if err != nil {
			return err
		}
		return s.refusePod(ctx, t, tp, reasonRuntimeClass, msg, true)
	}
	desired := podDown.translate(t, tp)
	reason, msg, release, err := s.admitPod(t, desired)
	if err != nil {
		return err
	}
	if reason != "" {
		if err := s.refusePod(ctx, t, tp, reason, msg, true); err != nil {
			return err
		}
		if reason == v1alpha1.PodReasonQuotaExceeded {
			s.queue.AddAfter(t.key, objKey{Kind: kindPod, Namespace: tp.Namespace, Name: tp.Name}, quotaRetry)
		}
		return nil
	}
	writeToken, err := s.preparePodToken(ctx, t, tp, false) // podtoken.go: the tenant's TokenRequest
	if err != nil {
		release(false)
		return err
	}
	// The pod goes first, alone, and its token Secret right after it: the super apiserver
	// serves the pod's create without the Secret's beside it, and the kubelet mounts the
	// Secret only once the pod is scheduled and bound, after both writes (if it ever came
	// first it would retry the mount). A failed create leaves the Secret to the next round.
	var tokenErr error
	err = create()
	if err == nil && writeToken != nil {
		tokenErr = writeToken(ctx)
	}
	release(err == nil)
	switch {
	case superRefused(err): // the down sync recorded the event
		if rerr := s.refusePod(ctx, t, tp, v1alpha1.PodReasonSuperRejected, "the super cluster refused the pod: "+err.Error(), false); rerr != nil {
			return rerr
		}
	case superRefused(tokenErr) && t.recorder != nil: // the super pod waits for it; retried, but say why
		t.recorder.Event(tp, corev1.EventTypeWarning, v1alpha1.PodReasonSuperRejected, "the super cluster refused the pod's token Secret: "+tokenErr.Error())
	}
	return errors.Join(err, tokenErr)
}
