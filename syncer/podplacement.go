package syncer

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// Re-placing a Pending pod. A super pod's node affinity is fixed when it is created, but the
// syncer writes into it node names that follow the tenant's virtual Nodes: those with the
// tenant's labels the pod selects (nodelabels.go) and those with the tenant's taints it does not
// tolerate (nodetaints.go). When those names change while the super pod waits unscheduled (a
// label added to a Node, a taint removed), the syncer deletes the super pod (preconditions: its
// UID and resource version, so a pod scheduled meanwhile is not touched) and the next round
// creates it with the new placement. Nothing ran, so nothing is lost; the tenant pod stays
// Pending throughout. The patrol brings every pod round once a resync period, so a change is
// acted on within one.

// nodeNameRequirements is the node-name requirements (matchFields metadata.name) of spec's
// required node affinity, over all terms, each as "operator values", sorted and without
// duplicates: what the syncer writes into the affinity to place a pod, and little else does.
func nodeNameRequirements(spec *corev1.PodSpec) []string {
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	var out []string
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range term.MatchFields {
			if r.Key == metav1.ObjectNameField {
				out = append(out, string(r.Operator)+" "+strings.Join(slices.Sorted(slices.Values(r.Values)), ","))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// placementChanged reports whether a super pod with spec desired would be placed by other node
// names than existing, which waits unscheduled.
func placementChanged(desired *corev1.PodSpec, existing *corev1.Pod) bool {
	return existing.Spec.NodeName == "" && !slices.Equal(nodeNameRequirements(desired), nodeNameRequirements(&existing.Spec))
}

// replacePending deletes super pod sp when it waits unscheduled and the tenant pod tp would now
// go down with another placement; it reports whether it deleted (the delete event brings the
// round that creates it again). For a pod without a nodeName, the node names of its super pod
// are those of onTenantNodes (the rest of translatePod adds none), so that alone is computed.
//
// A gated super pod is also made again when the tenant pod's spec changed since it was last
// written (tenantGenerationBehind) and its scheduling directives, translated, are not a change
// its update may make (gatedDirectives); the generation keeps a super pod whose directives the
// super cluster's admission changed from being made again on every round.
func (s *Syncer) replacePending(ctx context.Context, t *tenant, tp, sp *corev1.Pod) (bool, error) {
	if sp.Spec.NodeName != "" || tp.Spec.NodeName != "" {
		return false, nil
	}
	var why string
	switch {
	case placementChanged(&t.onTenantNodes(tp).Spec, sp):
		why = "placement among the tenant's Nodes changed"
	case len(sp.Spec.SchedulingGates) > 0 && tenantGenerationBehind(sp, tp) && directivesRefused(podDown.translate(t, tp), sp):
		why = "scheduling directives changed as no update of the gated pod may"
	default:
		return false, nil
	}
	klog.FromContext(ctx).V(2).Info("Creating the unscheduled super pod again", "reason", why)
	err := s.super.CoreV1().Pods(sp.Namespace).Delete(ctx, sp.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &sp.UID, ResourceVersion: &sp.ResourceVersion},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil // gone or changed (scheduled, perhaps) meanwhile: its event brings the next round
	}
	return err == nil, err
}

// Scheduling directives of a gated pod. While a pod has scheduling gates, its apiserver lets an
// update change where it may go (ValidatePodUpdate, k8s.io/kubernetes pkg/apis/core/validation):
// keys added to spec.nodeSelector; requirements appended to each required node-affinity term,
// or any terms when there were none; any preferred terms; and, as of any pod, tolerations added.
// Kueue adds a nodeSelector and tolerations this way, then lifts its gate. The down update of a
// gated super pod carries the tenant pod's directives, translated as for the create
// (podDown.translate), in the request that removes its gates (mergePod), so the super scheduler
// never sees the pod without them. Added tolerations go down for any pod (addedTolerations,
// mergePod): a running pod may gain one to stay on a node tainted NoExecute, and the super
// cluster's taint eviction reads the super pod's. The translation does not always make an allowed change of
// the tenant's (a policy's selector changed meanwhile, a term dropped by pinTenantLabels); such
// a super pod is made again (replacePending).
//
// The super cluster may refuse tolerations its pods may not have (a ValidatingAdmissionPolicy,
// a webhook), and with them the down update's other changes (labels, images, ...), on every
// round. So an ungated super pod's update refused while it adds tolerations goes again at once
// without them (takeBackTolerations); when that goes through the refusal was theirs: the tenant
// gets one SuperClusterRejected event and the super pod records them (annotationRefusedTolerations,
// podrefused.go), and they are not tried again until what refused them may have changed (a
// policy change, refusalRetryPeriod). Tolerations the tenant adds later are. A gated
// super pod's tolerations go with its directives or not at all, as its gates go with them.

// annotationRefusedTolerations records, on a super pod, the tolerations its tenant pod added
// that the super cluster refused: a refusalHash of each, and the last refusal's message
// (podrefused.go).
const annotationRefusedTolerations = ownership.ReservedPrefix + "refused-tolerations"

// gatedDirectives is a copy of super pod existing's spec with desired's scheduling directives
// (nodeSelector, node affinity, tolerations), as an update of a gated pod may change them; nil
// when existing is not gated, has them already, or cannot have them (refused). None of
// existing's directives goes, as upstream allows: those desired lacks may be the super
// cluster's admission's. Keys and tolerations are added; required terms are desired's when
// existing has none, else desired's must extend existing's term by term; preferred terms are
// desired's once one of desired's is missing (as they are when the tenant changed them).
func gatedDirectives(desired, existing *corev1.PodSpec) (out *corev1.PodSpec, refused bool) {
	if len(existing.SchedulingGates) == 0 {
		return nil, false
	}
	out = existing.DeepCopy()
	for k, v := range desired.NodeSelector {
		switch old, ok := existing.NodeSelector[k]; {
		case ok && old != v:
			return nil, true
		case !ok:
			if out.NodeSelector == nil {
				out.NodeSelector = map[string]string{}
			}
			out.NodeSelector[k] = v
		}
	}
	out.Tolerations = append(out.Tolerations, addedTolerations(desired.Tolerations, existing.Tolerations)...)
	oldNA := nodeAffinity(existing)
	na, ok := nodeAffinityUpdate(nodeAffinity(desired), oldNA)
	if !ok {
		return nil, true
	}
	if !apiequality.Semantic.DeepEqual(na, oldNA) {
		if out.Affinity == nil {
			out.Affinity = &corev1.Affinity{}
		}
		out.Affinity.NodeAffinity = na
	}
	if apiequality.Semantic.DeepEqual(out, existing) {
		return nil, false
	}
	return out, false
}

// addedTolerations is the tolerations of desired that existing lacks, which an update of any pod
// may add (upstream's validateOnlyAddedTolerations); none of existing's goes, as those desired
// lacks may be the super cluster's admission's. A toleration of desired that differs from one of
// existing only in tolerationSeconds is added too: the shorter of the two is what evicts.
func addedTolerations(desired, existing []corev1.Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for _, tol := range desired {
		if !slices.ContainsFunc(existing, func(x corev1.Toleration) bool { return apiequality.Semantic.DeepEqual(x, tol) }) {
			out = append(out, tol)
		}
	}
	return out
}

// tolerationsDown is the tolerations of desired that the down update adds to super pod
// existing: those it lacks (addedTolerations) and does not record as refused (and not due for
// retry).
func tolerationsDown(desired, existing *corev1.Pod) []corev1.Toleration {
	refused := refusalRecord(existing, annotationRefusedTolerations) // podrefused.go
	return slices.DeleteFunc(addedTolerations(desired.Spec.Tolerations, existing.Spec.Tolerations), func(tol corev1.Toleration) bool {
		return refused.stands(refusalHash(tol))
	})
}

// takeBackTolerations is podDown's refused: for ungated super pod st.super, whose update merged
// adds tolerations and was refused (refusal), it sends merged again without them; once that
// went through, it tells the tenant that the tolerations were refused and records them on the
// super pod. It reports false, leaving the refusal to the down sync, when merged adds none or
// is refused without them too.
func takeBackTolerations(ctx context.Context, s *Syncer, t *tenant, w writer[*corev1.Pod], st state[*corev1.Pod], merged *corev1.Pod, refusal error) (bool, error) {
	sp := st.super
	added := addedTolerations(merged.Spec.Tolerations, sp.Spec.Tolerations)
	if len(sp.Spec.SchedulingGates) > 0 || len(added) == 0 {
		return false, nil
	}
	without := merged.DeepCopy()
	without.Spec.Tolerations = sp.Spec.Tolerations
	klog.FromContext(ctx).V(2).Info("Updating super object without the tolerations it refused", "superObject", klog.KObj(sp), "err", refusal)
	written, err := w.Update(ctx, without, metav1.UpdateOptions{})
	if superRefused(err) { // down.go
		return false, nil
	}
	if err != nil {
		return true, err
	}
	hashes, names := make([]string, len(added)), make([]string, len(added))
	for i, tol := range added {
		hashes[i] = refusalHash(tol)
		names[i] = tol.Key // as kubectl writes a taint: key[=value][:effect]
		if tol.Value != "" {
			names[i] += "=" + tol.Value
		}
		if tol.Effect != "" {
			names[i] += ":" + string(tol.Effect)
		}
	}
	// Tolerations recorded before that the super pod has now (a retry went through) go from the
	// record.
	has := func(h string) bool {
		return slices.ContainsFunc(written.Spec.Tolerations, func(tol corev1.Toleration) bool { return refusalHash(tol) == h })
	}
	recorded, tell := s.refused(t, written, annotationRefusedTolerations, hashes, func(h string) bool { return !has(h) }, refusal.Error()) // podrefused.go
	_, err = s.recordRefused(ctx, t, st.tenant, recorded, tell, "the tolerations "+strings.Join(names, ", "), refusal)
	return true, err
}

// directivesRefused reports whether gated super pod sp cannot take the scheduling directives of
// desired, its tenant pod translated, in an update.
func directivesRefused(desired, sp *corev1.Pod) bool {
	_, refused := gatedDirectives(&desired.Spec, &sp.Spec)
	return refused
}

func nodeAffinity(spec *corev1.PodSpec) *corev1.NodeAffinity {
	if spec.Affinity == nil {
		return nil
	}
	return spec.Affinity.NodeAffinity
}

// nodeAffinityUpdate is node affinity existing updated to desired's as gatedDirectives says; ok
// is false when upstream refuses that change of the required terms.
func nodeAffinityUpdate(desired, existing *corev1.NodeAffinity) (*corev1.NodeAffinity, bool) {
	var dReq, eReq *corev1.NodeSelector
	var dPref, ePref []corev1.PreferredSchedulingTerm
	if desired != nil {
		dReq, dPref = desired.RequiredDuringSchedulingIgnoredDuringExecution, desired.PreferredDuringSchedulingIgnoredDuringExecution
	}
	if existing != nil {
		eReq, ePref = existing.RequiredDuringSchedulingIgnoredDuringExecution, existing.PreferredDuringSchedulingIgnoredDuringExecution
	}
	req := eReq
	switch {
	case eReq == nil || len(eReq.NodeSelectorTerms) == 0:
		if dReq != nil {
			req = dReq
		}
	default:
		var dTerms []corev1.NodeSelectorTerm
		if dReq != nil {
			dTerms = dReq.NodeSelectorTerms
		}
		if len(dTerms) != len(eReq.NodeSelectorTerms) {
			return nil, false
		}
		for i, e := range eReq.NodeSelectorTerms {
			if !termExtends(dTerms[i], e) {
				return nil, false
			}
		}
		req = dReq
	}
	pref := ePref
	if !isSubset(dPref, ePref) {
		pref = dPref
	}
	if req == nil && len(pref) == 0 && existing == nil {
		return nil, true
	}
	out := &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: req, PreferredDuringSchedulingIgnoredDuringExecution: pref}
	return out.DeepCopy(), true
}

// termExtends reports whether node-selector term d is term e with requirements appended, or
// both are empty (upstream's validateNodeSelectorTermHasOnlyAdditions).
func termExtends(d, e corev1.NodeSelectorTerm) bool {
	if len(e.MatchExpressions) == 0 && len(e.MatchFields) == 0 {
		return len(d.MatchExpressions) == 0 && len(d.MatchFields) == 0
	}
	prefix := func(d, e []corev1.NodeSelectorRequirement) bool {
		return len(d) >= len(e) && (len(e) == 0 || apiequality.Semantic.DeepEqual(d[:len(e)], e))
	}
	return prefix(d.MatchExpressions, e.MatchExpressions) && prefix(d.MatchFields, e.MatchFields)
}

func isSubset[T any](sub, of []T) bool {
	for _, x := range sub {
		if !slices.ContainsFunc(of, func(y T) bool { return apiequality.Semantic.DeepEqual(x, y) }) {
			return false
		}
	}
	return true
}
