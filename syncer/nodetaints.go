package syncer

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// Node taints. A virtual Node shows the super node's taints except those the tenant's policy
// tolerates (spec.policy.tolerations: every super pod of the tenant tolerates them, so they are
// not the tenant's concern), and keeps the taints the tenant adds itself (kubectl taint node);
// for a taint of the same key and effect the super node's wins. The annotation
// ownership.AnnotationSuperTaints lists the key:Effect of the taints copied from the super
// node, so one removed there, or newly tolerated by the policy, goes from the virtual Node too.
// The super node never gets the tenant's taints. They act in the tenant as in any cluster:
//   - NoExecute: the tenant's taint-eviction controller evicts the tenant's pods on the Node
//     that do not tolerate the taint (after their tolerationSeconds); the syncer then deletes
//     their super pods;
//   - NoSchedule and NoExecute: a new pod that does not tolerate such a taint goes down with
//     its node affinity excluding that Node (avoidTenantTaints), so the super scheduler puts it
//     elsewhere or keeps it Pending. A pod whose nodeName the tenant set itself is not checked
//     against them, as a kubelet does not check NoSchedule.
// Taints of a virtual Node go with it once none of the tenant's pods runs there.

// taintID is a taint's identity on a node: its key and effect.
func taintID(t corev1.Taint) string { return t.Key + ":" + string(t.Effect) }

// shownSuperTaints is the taints of super that its tenant's virtual Node shows: those the
// policy's tolerations do not tolerate.
func shownSuperTaints(super *corev1.Node, tolerations []corev1.Toleration) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range super.Spec.Taints {
		if !corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, &t, false) {
			out = append(out, t)
		}
	}
	return out
}

// tenantTaints is the taints of virtual Node n that the tenant set itself: those not listed as
// copied from the super node (AnnotationSuperTaints). A Node without the annotation (from a
// syncer before it) has none.
func tenantTaints(n *corev1.Node) []corev1.Taint {
	superIDs, ok := n.Annotations[ownership.AnnotationSuperTaints]
	if !ok {
		return nil
	}
	fromSuper := strings.Split(superIDs, ",")
	var out []corev1.Taint
	for _, t := range n.Spec.Taints {
		if !slices.Contains(fromSuper, taintID(t)) {
			out = append(out, t)
		}
	}
	return out
}

// withTenantTaints adds to want (a virtual Node with the super node's shown taints) the
// tenant's own taints of existing (nil: none yet), the super node's winning, and records the
// super taints' identities.
func withTenantTaints(want, existing *corev1.Node) {
	ids := make([]string, 0, len(want.Spec.Taints))
	for _, t := range want.Spec.Taints {
		ids = append(ids, taintID(t))
	}
	slices.Sort(ids)
	if want.Annotations == nil {
		want.Annotations = map[string]string{}
	}
	want.Annotations[ownership.AnnotationSuperTaints] = strings.Join(ids, ",")
	if existing == nil {
		return
	}
	for _, t := range tenantTaints(existing) {
		if !slices.Contains(ids, taintID(t)) {
			want.Spec.Taints = append(want.Spec.Taints, t)
		}
	}
}

// avoidTenantTaints is spec (a super pod's) with its required node affinity excluding the
// virtual Nodes (nodes) that have a NoSchedule or NoExecute taint of the tenant's own which the
// pod does not tolerate: every term gets "metadata.name NotIn [N]" for each such Node N (a pod
// without terms gets one). spec is returned as it is when no such Node exists or the pod names its node.
func avoidTenantTaints(spec *corev1.PodSpec, nodes []*corev1.Node) *corev1.PodSpec {
	if spec.NodeName != "" {
		return spec
	}
	var avoid []string
	for _, n := range nodes {
		_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), tenantTaints(n), spec.Tolerations, func(t *corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}, false)
		if untolerated {
			avoid = append(avoid, n.Name)
		}
	}
	if len(avoid) == 0 {
		return spec
	}
	slices.Sort(avoid)
	out := spec.DeepCopy()
	for _, name := range avoid { // a node field requirement takes one name (upstream's validation)
		requireInEveryTerm(out, corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpNotIn, Values: []string{name}})
	}
	return out
}
