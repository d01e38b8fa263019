package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

func tenantNamespace(name string, kv ...string) *corev1.Namespace {
	l := map[string]string{corev1.LabelMetadataName: name}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

// ownedBy is the requirement every translated namespaceSelector carries, plus extra labels.
func ownedBy(kv ...string) map[string]string {
	m := map[string]string{ownership.LabelClusterKey: testKey}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestSuperNamespaceSelector(t *testing.T) {
	namespaces := []*corev1.Namespace{
		tenantNamespace("default"), tenantNamespace("web", "team", "a"), tenantNamespace("db", "team", "a"), tenantNamespace("ops", "team", "b"),
	}
	name := corev1.LabelMetadataName
	cases := map[string]struct {
		in, want *metav1.LabelSelector
	}{
		"nil (the policy's own namespace) stays nil": {},
		"empty (all namespaces) becomes all of the tenant's": {
			in:   &metav1.LabelSelector{},
			want: &metav1.LabelSelector{MatchLabels: ownedBy()},
		},
		"metadata.name label is mapped to the super name": {
			in:   &metav1.LabelSelector{MatchLabels: map[string]string{name: "web"}},
			want: &metav1.LabelSelector{MatchLabels: ownedBy(name, "demo-5c9a8459-web")},
		},
		"metadata.name expressions are mapped, any operator": {
			in: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: name, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"web", "db"}},
				{Key: name, Operator: metav1.LabelSelectorOpExists},
			}},
			want: &metav1.LabelSelector{MatchLabels: ownedBy(), MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: name, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"demo-5c9a8459-web", "demo-5c9a8459-db"}},
				{Key: name, Operator: metav1.LabelSelectorOpExists},
			}},
		},
		"a long name is mapped like the namespace itself": {
			in: &metav1.LabelSelector{MatchLabels: map[string]string{name: "a-very-long-tenant-namespace-name-that-does-not-fit-once-prefixed"}},
			want: &metav1.LabelSelector{MatchLabels: ownedBy(name,
				mapping.SuperNamespace(testKey, "a-very-long-tenant-namespace-name-that-does-not-fit-once-prefixed"))},
		},
		"tenant labels are resolved against the tenant's namespaces": {
			in: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}},
			want: &metav1.LabelSelector{MatchLabels: ownedBy(), MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: name, Operator: metav1.LabelSelectorOpIn, Values: []string{"demo-5c9a8459-db", "demo-5c9a8459-web"}}}},
		},
		"tenant labels and names together are resolved": {
			in: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}, MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: name, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"db"}}}},
			want: &metav1.LabelSelector{MatchLabels: ownedBy(), MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: name, Operator: metav1.LabelSelectorOpIn, Values: []string{"demo-5c9a8459-web"}}}},
		},
		"a label no tenant namespace has selects nothing": {
			in: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "z"}},
			want: &metav1.LabelSelector{MatchLabels: ownedBy(), MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: name, Operator: metav1.LabelSelectorOpDoesNotExist}}},
		},
		"a forged ownership label cannot reach another tenant": {
			in: &metav1.LabelSelector{MatchLabels: map[string]string{ownership.LabelClusterKey: "other-00000000"}},
			want: &metav1.LabelSelector{MatchLabels: ownedBy(), MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: name, Operator: metav1.LabelSelectorOpDoesNotExist}}},
		},
	}
	for n, tc := range cases {
		t.Run(n, func(t *testing.T) {
			got := superNamespaceSelector(tc.in, testKey, namespaces)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("superNamespaceSelector (-want +got):\n%s", diff)
			}
			if got == nil {
				return
			}
			// Whatever the tenant wrote, no namespace of another tenant is selected.
			sel, err := metav1.LabelSelectorAsSelector(got)
			if err != nil {
				t.Fatal(err)
			}
			other := labels.Set{ownership.LabelClusterKey: "other-00000000", corev1.LabelMetadataName: "other-00000000-web"}
			if sel.Matches(other) {
				t.Errorf("%v selects another tenant's namespace", sel)
			}
		})
	}
}

func TestTranslateNetworkPolicy(t *testing.T) {
	web := metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	ipBlock := &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: web,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &web},                                             // same namespace
				{NamespaceSelector: &metav1.LabelSelector{}},                    // all namespaces
				{PodSelector: &web, NamespaceSelector: &metav1.LabelSelector{}}, // pods anywhere
				{IPBlock: ipBlock},
			}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "kube-system"}}},
			}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	want := &networkingv1.NetworkPolicy{
		ObjectMeta: stampedMeta,
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: web,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &web},
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: ownedBy()}},
				{PodSelector: &web, NamespaceSelector: &metav1.LabelSelector{MatchLabels: ownedBy()}},
				{IPBlock: ipBlock},
			}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: ownedBy(corev1.LabelMetadataName, "demo-5c9a8459-kube-system")}},
			}}},
			PolicyTypes: np.Spec.PolicyTypes,
		},
	}
	orig := np.DeepCopy()
	if diff := cmp.Diff(want, translateNetworkPolicy(np, testOwner, nil)); diff != "" {
		t.Errorf("translateNetworkPolicy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(orig, np); diff != "" {
		t.Errorf("translateNetworkPolicy changed its input (-before +after):\n%s", diff)
	}
}

// TestNetworkPolicyFollowsNamespaces: a policy selecting namespaces by a tenant label is
// re-queued when a tenant namespace changes, and its super copy then follows.
func TestNetworkPolicyFollowsNamespaces(t *testing.T) {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}}}}},
	}
	superNP := translateNetworkPolicy(np, testOwner, nil) // selected nothing
	h := newHarness(t, []object{superNP}, []object{np, tenantNamespace("default"), tenantNamespace("web", "team", "a")})
	h.t.settings.Store(&settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindNetworkPolicy}})
	if diff := cmp.Diff([]objKey{{Kind: kindNetworkPolicy, Namespace: "default", Name: "web"}}, h.t.networkPolicyKeys()); diff != "" {
		t.Errorf("keys re-queued on a namespace change (-want +got):\n%s", diff)
	}
	if err := h.s.syncNetworkPolicy(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update networkpolicies demo-5c9a8459-default/web"}, writes(h.super)); diff != "" {
		t.Errorf("super writes (-want +got):\n%s", diff)
	}
	got, err := h.super.NetworkingV1().NetworkPolicies(testSuperNS).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []metav1.LabelSelectorRequirement{{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: []string{"demo-5c9a8459-web"}}}
	if diff := cmp.Diff(want, got.Spec.Ingress[0].From[0].NamespaceSelector.MatchExpressions); diff != "" {
		t.Errorf("super namespaceSelector (-want +got):\n%s", diff)
	}
	h.t.settings.Store(&settings{})
	if keys := h.t.networkPolicyKeys(); len(keys) > 0 {
		t.Errorf("keys re-queued without the opt-in: %v", keys)
	}
}
