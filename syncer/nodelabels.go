package syncer

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// Node labels of the tenant's own. A tenant may label its virtual Nodes (kubectl label node):
// the syncer keeps those labels next to the super node's (which win for the same key) and
// records the keys it copied from the super node in the annotation
// ownership.AnnotationSuperLabels, so a label removed from the super node goes from the
// virtual Node too. The super node never gets the tenant's labels. A tenant pod that selects
// nodes by such a label (nodeSelector or required node affinity) is placed by the syncer among
// the tenant's virtual Nodes: the super pod gets, instead of the tenant's requirements on those
// labels, the names of the virtual Nodes that meet all of the pod's requirements
// (pinTenantLabels). A pod no virtual Node matches keeps its requirements and waits Pending
// in the super cluster, as it would in any cluster. Labels of a virtual Node go with it once
// none of the tenant's pods runs there.

// tenantLabels is the labels of virtual Node n that the tenant set itself: those not copied
// from the super node (AnnotationSuperLabels) and not the virtual-node mark. A Node without
// the annotation (from a syncer before it) has none.
func tenantLabels(n *corev1.Node) map[string]string {
	superKeys, ok := n.Annotations[ownership.AnnotationSuperLabels]
	if !ok {
		return nil
	}
	fromSuper := strings.Split(superKeys, ",")
	out := map[string]string{}
	for k, v := range n.Labels {
		if k != ownership.LabelVirtualNode && !slices.Contains(fromSuper, k) {
			out[k] = v
		}
	}
	return out
}

// withTenantLabels adds to want (a virtual Node made from a super node) the tenant's own
// labels of existing (nil: none yet), the super node's winning, and records the super keys.
func withTenantLabels(want, existing *corev1.Node, super *corev1.Node) {
	keys := slices.Sorted(maps.Keys(super.Labels))
	if want.Annotations == nil {
		want.Annotations = map[string]string{}
	}
	want.Annotations[ownership.AnnotationSuperLabels] = strings.Join(keys, ",")
	if existing == nil {
		return
	}
	for k, v := range tenantLabels(existing) {
		if _, isSuper := want.Labels[k]; !isSuper {
			want.Labels[k] = v
		}
	}
}

// pinTenantLabels is spec (a super pod's, before the policy) with the node requirements on
// labels the tenant set on its virtual Nodes (nodes) replaced by the names of the virtual Nodes
// that meet them: each required node-affinity term becomes one term per Node that meets it and
// the pod's nodeSelector, naming that Node (terms no Node meets are dropped). spec is returned as it is when
// the pod requires no such label, or when no virtual Node meets its requirements (the pod then
// waits Pending).
func pinTenantLabels(spec *corev1.PodSpec, nodes []*corev1.Node) *corev1.PodSpec {
	own := map[string]bool{}
	for _, n := range nodes {
		for k := range tenantLabels(n) {
			own[k] = true
		}
	}
	if len(own) == 0 || !requiresAny(spec, own) {
		return spec
	}
	var terms []corev1.NodeSelectorTerm // nil: the nodeSelector alone
	if na := spec.Affinity; na != nil && na.NodeAffinity != nil && na.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms = na.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	}
	// meeting is the names of the nodes that meet the nodeSelector and term (nil: no term).
	meeting := func(term *corev1.NodeSelectorTerm) []string {
		p := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: spec.NodeSelector}}
		if term != nil {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{*term}}}}
		}
		required := nodeaffinity.GetRequiredNodeAffinity(p)
		var names []string
		for _, n := range nodes {
			if ok, err := required.Match(n); err == nil && ok {
				names = append(names, n.Name)
			}
		}
		slices.Sort(names)
		return names
	}
	// A node field requirement takes one name (upstream's validation), so a term met by several
	// Nodes becomes one term per Node: the terms are ORed.
	var pinned []corev1.NodeSelectorTerm
	if terms == nil {
		for _, name := range meeting(nil) {
			pinned = append(pinned, corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{byNodeName(name)}})
		}
	}
	for i := range terms {
		base := terms[i].DeepCopy()
		base.MatchExpressions = slices.DeleteFunc(base.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool { return own[r.Key] })
		for _, name := range meeting(&terms[i]) {
			term := *base.DeepCopy()
			term.MatchFields = append(term.MatchFields, byNodeName(name))
			pinned = append(pinned, term)
		}
	}
	if len(pinned) == 0 {
		return spec
	}
	out := spec.DeepCopy()
	maps.DeleteFunc(out.NodeSelector, func(k, _ string) bool { return own[k] })
	if out.Affinity == nil {
		out.Affinity = &corev1.Affinity{}
	}
	if out.Affinity.NodeAffinity == nil {
		out.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	out.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: pinned}
	return out
}

// byNodeName is the node-affinity requirement "the node named name".
func byNodeName(name string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{name}}
}

// requiresAny reports whether spec's nodeSelector or required node affinity names a key of keys.
func requiresAny(spec *corev1.PodSpec, keys map[string]bool) bool {
	for k := range spec.NodeSelector {
		if keys[k] {
			return true
		}
	}
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range term.MatchExpressions {
			if keys[r.Key] {
				return true
			}
		}
	}
	return false
}

// onTenantNodes is tenant pod p placed among the tenant's virtual Nodes: its node requirements
// on the tenant's own node labels pinned to Nodes (pinTenantLabels) and the Nodes with taints
// of the tenant's own it does not tolerate excluded (avoidTenantTaints, nodetaints.go); p
// itself when nothing changes.
func (t *tenant) onTenantNodes(p *corev1.Pod) *corev1.Pod {
	nodes, err := t.nodes.List(labels.SelectorFromSet(labels.Set{ownership.LabelVirtualNode: "true"}))
	if err != nil || len(nodes) == 0 {
		return p
	}
	spec := avoidTenantTaints(pinTenantLabels(&p.Spec, nodes), nodes)
	if spec == &p.Spec {
		return p
	}
	out := *p
	out.Spec = *spec
	return &out
}
