package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

func TestTranslateOptInKinds(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: meta, Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: ptrIntOrString(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	if diff := cmp.Diff(&policyv1.PodDisruptionBudget{ObjectMeta: stampedMeta, Spec: pdb.Spec}, translatePDB(pdb, testOwner)); diff != "" {
		t.Errorf("translatePDB (-want +got):\n%s", diff)
	}
	ing := &networkingv1.Ingress{ObjectMeta: meta, Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	if diff := cmp.Diff(&networkingv1.Ingress{ObjectMeta: stampedMeta, Spec: ing.Spec}, translateIngress(ing, testOwner)); diff != "" {
		t.Errorf("translateIngress (-want +got):\n%s", diff)
	}
}

func ptrIntOrString(v intstr.IntOrString) *intstr.IntOrString { return &v }

// TestOptInKinds: PodDisruptionBudgets, Ingresses and NetworkPolicies go down only when the
// VirtualCluster opts in; opting out again removes them.
func TestOptInKinds(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"}
	superNS := superDefaultNS.DeepCopy()
	cases := map[string]struct {
		kinds []v1alpha1.SyncKind
		super []object
		want  []string
	}{
		"not opted in": {super: []object{superNS}},
		"opted in": {kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindIngress, v1alpha1.SyncKindPodDisruptionBudget, v1alpha1.SyncKindNetworkPolicy}, super: []object{superNS},
			want: []string{"create ingresses demo-5c9a8459-default/web", "create networkpolicies demo-5c9a8459-default/web", "create poddisruptionbudgets demo-5c9a8459-default/web"}},
		"opted out again": {super: []object{superNS, &policyv1.PodDisruptionBudget{ObjectMeta: stampedMeta}, &networkingv1.Ingress{ObjectMeta: stampedMeta}, &networkingv1.NetworkPolicy{ObjectMeta: stampedMeta}},
			want: []string{"delete ingresses demo-5c9a8459-default/web", "delete networkpolicies demo-5c9a8459-default/web", "delete poddisruptionbudgets demo-5c9a8459-default/web"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, []object{&policyv1.PodDisruptionBudget{ObjectMeta: meta}, &networkingv1.Ingress{ObjectMeta: meta}, &networkingv1.NetworkPolicy{ObjectMeta: meta}})
			h.t.settings.Store(&settings{kinds: tc.kinds})
			ctx := testContext(t)
			if err := h.s.syncPDB(ctx, h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			if err := h.s.syncIngress(ctx, h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			if err := h.s.syncNetworkPolicy(ctx, h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
		})
	}
}
