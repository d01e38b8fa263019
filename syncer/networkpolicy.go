package syncer

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// NetworkPolicies: down, when the VirtualCluster opts in (spec.sync.kinds NetworkPolicy), for
// the super cluster's network plugin. A policy must keep selecting inside the tenant:
//
//   - spec.podSelector and peer podSelectors stay: they select in the policy's own (super)
//     namespace, and super pods keep the tenant's labels;
//   - a nil peer namespaceSelector (next to a podSelector: the policy's own namespace) stays nil;
//   - every other peer namespaceSelector, the empty one ("all namespaces") included, gets the
//     requirement cluster-key=<this tenant>, so it can only ever select this tenant's super
//     namespaces. Selectors that use kubernetes.io/metadata.name only get their values mapped to
//     super namespace names (the super apiserver sets that label; it cannot be forged). Tenant
//     namespace labels stay in the tenant (see translateNamespace), so a selector on any other
//     label is evaluated against the tenant's namespaces and becomes the list of their super
//     names; a namespace change re-queues the tenant's policies;
//   - ipBlock peers and ports stay.
//
// Nothing goes up: a NetworkPolicy has no status.

// labelNamespaceName is the label every apiserver sets on a namespace: its name.
const labelNamespaceName = corev1.LabelMetadataName

// translateNetworkPolicy is the super policy for a tenant policy; namespaces are the tenant's
// namespaces, against which label selectors are evaluated.
func translateNetworkPolicy(np *networkingv1.NetworkPolicy, owner mapping.Owner, namespaces []*corev1.Namespace) *networkingv1.NetworkPolicy {
	spec := np.Spec.DeepCopy()
	restrict := func(peers []networkingv1.NetworkPolicyPeer) {
		for i := range peers {
			peers[i].NamespaceSelector = superNamespaceSelector(peers[i].NamespaceSelector, owner.ClusterKey, namespaces)
		}
	}
	for i := range spec.Ingress {
		restrict(spec.Ingress[i].From)
	}
	for i := range spec.Egress {
		restrict(spec.Egress[i].To)
	}
	return &networkingv1.NetworkPolicy{ObjectMeta: mapping.SuperMeta(np, owner), Spec: *spec}
}

// superNamespaceSelector is a tenant peer's namespaceSelector as it must read in the super
// cluster: limited to the super namespaces of the tenant with clusterKey. Nil stays nil.
func superNamespaceSelector(sel *metav1.LabelSelector, clusterKey string, namespaces []*corev1.Namespace) *metav1.LabelSelector {
	if sel == nil {
		return nil
	}
	out := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	if selectsByNameOnly(sel) {
		for k, v := range sel.MatchLabels {
			out.MatchLabels[k] = mapping.SuperNamespace(clusterKey, v)
		}
		for _, r := range sel.MatchExpressions {
			r.Values = slices.Clone(r.Values)
			for i, v := range r.Values {
				r.Values[i] = mapping.SuperNamespace(clusterKey, v)
			}
			out.MatchExpressions = append(out.MatchExpressions, r)
		}
	} else {
		out.MatchExpressions = []metav1.LabelSelectorRequirement{namesRequirement(clusterKey, matchingNamespaces(sel, namespaces))}
	}
	// Last, so that no tenant-written key can override it.
	out.MatchLabels[ownership.LabelClusterKey] = clusterKey
	return out
}

// selectsByNameOnly reports whether a selector uses no label but kubernetes.io/metadata.name
// (the empty selector included).
func selectsByNameOnly(sel *metav1.LabelSelector) bool {
	for k := range sel.MatchLabels {
		if k != labelNamespaceName {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		if r.Key != labelNamespaceName {
			return false
		}
	}
	return true
}

// matchingNamespaces lists the names of the tenant namespaces sel selects, sorted. An invalid
// selector (the tenant apiserver validated it, so this does not happen) selects none.
func matchingNamespaces(sel *metav1.LabelSelector, namespaces []*corev1.Namespace) []string {
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	var names []string
	for _, ns := range namespaces {
		set := labels.Set(ns.Labels)
		if _, ok := set[labelNamespaceName]; !ok {
			set = labels.Merge(set, labels.Set{labelNamespaceName: ns.Name})
		}
		if selector.Matches(set) {
			names = append(names, ns.Name)
		}
	}
	slices.Sort(names)
	return names
}

// namesRequirement selects exactly the super namespaces of the tenant namespaces names; for no
// names it selects nothing (every namespace has the name label).
func namesRequirement(clusterKey string, names []string) metav1.LabelSelectorRequirement {
	if len(names) == 0 {
		return metav1.LabelSelectorRequirement{Key: labelNamespaceName, Operator: metav1.LabelSelectorOpDoesNotExist}
	}
	values := make([]string, len(names))
	for i, n := range names {
		values[i] = mapping.SuperNamespace(clusterKey, n)
	}
	return metav1.LabelSelectorRequirement{Key: labelNamespaceName, Operator: metav1.LabelSelectorOpIn, Values: values}
}

var networkPolicyDown = down[*networkingv1.NetworkPolicy]{
	kind: kindNetworkPolicy,
	translate: func(t *tenant, np *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
		namespaces, _ := t.namespaces.List(labels.Everything())
		return translateNetworkPolicy(np, t.owner, namespaces)
	},
	equal: func(desired, existing *networkingv1.NetworkPolicy) bool {
		return stampedMetaEqual(desired, existing) && apiequality.Semantic.DeepEqual(desired.Spec, existing.Spec)
	},
	merge: func(desired, existing *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Spec = desired.Spec
		return out
	},
}

func (s *Syncer) syncNetworkPolicy(ctx context.Context, t *tenant, ns, name string) error {
	tp, hasTenant, err := lookup(t.netpols.NetworkPolicies(ns).Get(name))
	if err != nil {
		return err
	}
	hasTenant = hasTenant && t.settings.Load().optedIn(v1alpha1.SyncKindNetworkPolicy)
	superNS := mapping.SuperNamespace(t.key, ns)
	sp, hasSuper, err := lookup(s.superNetPols.NetworkPolicies(superNS).Get(name))
	if err != nil {
		return err
	}
	return networkPolicyDown.sync(ctx, s, t, s.super.NetworkingV1().NetworkPolicies(superNS),
		state[*networkingv1.NetworkPolicy]{tenantNS: ns, tenant: tp, hasTenant: hasTenant, super: sp, hasSuper: hasSuper})
}

// networkPolicyKeys are the keys of all the tenant's NetworkPolicies when it opted in to them:
// a namespace change can change what their selectors resolve to.
func (t *tenant) networkPolicyKeys() []objKey {
	idx := t.index[kindNetworkPolicy]
	if idx == nil || !t.settings.Load().optedIn(v1alpha1.SyncKindNetworkPolicy) {
		return nil
	}
	var keys []objKey
	for _, obj := range idx.List() {
		if m, err := metaOf(obj); err == nil {
			keys = append(keys, tenantKey(kindNetworkPolicy, m))
		}
	}
	return keys
}
