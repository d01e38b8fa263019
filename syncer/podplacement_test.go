package syncer

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/kubernetes/pkg/apis/core"
	k8scorev1 "k8s.io/kubernetes/pkg/apis/core/v1"
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

func TestPlacementChanged(t *testing.T) {
	names := func(op corev1.NodeSelectorOperator, n ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: op, Values: n}
	}
	zone := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	spec := func(terms ...corev1.NodeSelectorTerm) corev1.PodSpec {
		if terms == nil {
			return corev1.PodSpec{}
		}
		return corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}}
	}
	fields := func(r ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchFields: r}
	}
	for _, tc := range []struct {
		name              string
		desired, existing corev1.PodSpec
		scheduled         bool
		want              bool
	}{
		{name: "no node names on either side", desired: spec(), existing: spec(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}})},
		{name: "the same names, values and terms in another order",
			desired:  spec(fields(names(corev1.NodeSelectorOpNotIn, "vm-1", "vm-2")), fields(names(corev1.NodeSelectorOpNotIn, "vm-2", "vm-1"))),
			existing: spec(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}, MatchFields: []corev1.NodeSelectorRequirement{names(corev1.NodeSelectorOpNotIn, "vm-2", "vm-1")}})},
		{name: "a Node newly tainted", desired: spec(fields(names(corev1.NodeSelectorOpNotIn, "vm-1"))), existing: spec(), want: true},
		{name: "a taint removed", desired: spec(), existing: spec(fields(names(corev1.NodeSelectorOpNotIn, "vm-1"))), want: true},
		{name: "a label added: pinned now", desired: spec(fields(names(corev1.NodeSelectorOpIn, "vm-1", "vm-3"))), existing: spec(fields(names(corev1.NodeSelectorOpIn, "vm-1"))), want: true},
		{name: "scheduled already: never", desired: spec(fields(names(corev1.NodeSelectorOpNotIn, "vm-1"))), existing: spec(), scheduled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			existing := &corev1.Pod{Spec: tc.existing}
			if tc.scheduled {
				existing.Spec.NodeName = "vm-1"
			}
			if got := placementChanged(&tc.desired, existing); got != tc.want {
				t.Errorf("placementChanged = %t, want %t (desired %v, existing %v)", got, tc.want, nodeNameRequirements(&tc.desired), nodeNameRequirements(&tc.existing))
			}
		})
	}
}

// TestReplacePendingPod: an unscheduled super pod whose tenant pod would now avoid a Node the
// tenant tainted is deleted, to be created again; a scheduled one is left alone.
func TestReplacePendingPod(t *testing.T) {
	tainted := taintedVirtualNode("vm", "", taint("maintenance", "", corev1.TaintEffectNoSchedule))
	for _, tc := range []struct {
		name       string
		superNode  string
		wantDelete bool
	}{
		{name: "unscheduled: created again", wantDelete: true},
		{name: "scheduled: left alone", superNode: "vm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := MakePod(testSuperNS, "web").Owned("uid-web").Node(tc.superNode).Phase(corev1.PodPending).Obj()
			h := newHarness(t, []object{sp}, []object{MakePod("default", "web").Obj(), tainted})
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			deleted := slices.Contains(writes(h.super), "delete pods "+testSuperNS+"/web")
			if deleted != tc.wantDelete {
				t.Errorf("super writes %v; want the pod deleted: %t", writes(h.super), tc.wantDelete)
			}
		})
	}
}

// TestGatedDirectives: a gated super pod takes the tenant's new scheduling directives as an
// update of a gated pod may change them, checked against upstream's ValidatePodUpdate; one the
// update may not make is refused, and so is it upstream.
func TestGatedDirectives(t *testing.T) {
	req := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	zone, pool := req("zone", corev1.NodeSelectorOpIn, "a"), req("pool", corev1.NodeSelectorOpIn, "gpu")
	notVM := req(metav1.ObjectNameField, corev1.NodeSelectorOpNotIn, "vm") // avoidTenantTaints'
	required := func(terms ...corev1.NodeSelectorTerm) *corev1.NodeAffinity {
		return &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}
	}
	preferred := func(weight int32, r corev1.NodeSelectorRequirement) corev1.PreferredSchedulingTerm {
		return corev1.PreferredSchedulingTerm{Weight: weight, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{r}}}
	}
	spot := corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	notReady := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)}
	type directives struct {
		selector    map[string]string
		affinity    *corev1.NodeAffinity
		tolerations []corev1.Toleration
	}
	spec := func(d directives, gated bool) *corev1.PodSpec {
		s := &corev1.PodSpec{NodeSelector: d.selector, Tolerations: d.tolerations}
		if d.affinity != nil {
			s.Affinity = &corev1.Affinity{NodeAffinity: d.affinity}
		}
		if gated {
			s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
		}
		return s
	}
	cases := map[string]struct {
		desired, existing directives
		ungated           bool
		want              *directives // nil: nothing to write
		refused           bool
	}{
		"in sync": {
			desired:  directives{selector: map[string]string{"pool": "a"}, tolerations: []corev1.Toleration{notReady}},
			existing: directives{selector: map[string]string{"pool": "a"}, tolerations: []corev1.Toleration{notReady}},
		},
		"not gated: left as it is": {
			desired: directives{selector: map[string]string{"pool": "a"}},
			ungated: true,
		},
		"a nodeSelector key added; the super cluster's own stays": {
			desired:  directives{selector: map[string]string{"pool": "a", "flavor": "spot"}},
			existing: directives{selector: map[string]string{"pool": "a", "super": "x"}},
			want:     &directives{selector: map[string]string{"pool": "a", "flavor": "spot", "super": "x"}},
		},
		"a nodeSelector value changed: refused": {
			desired:  directives{selector: map[string]string{"pool": "b"}},
			existing: directives{selector: map[string]string{"pool": "a"}},
			refused:  true,
		},
		"a toleration added; the super cluster's own stays": {
			desired:  directives{tolerations: []corev1.Toleration{spot}},
			existing: directives{tolerations: []corev1.Toleration{notReady}},
			want:     &directives{tolerations: []corev1.Toleration{notReady, spot}},
		},
		"required terms where there were none": {
			desired: directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}})},
			want:    &directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}})},
		},
		"a requirement appended to a term the syncer wrote": {
			desired:  directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}, MatchFields: []corev1.NodeSelectorRequirement{notVM}})},
			existing: directives{affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notVM}})},
			want:     &directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}, MatchFields: []corev1.NodeSelectorRequirement{notVM}})},
		},
		"a requirement appended to the tenant's term": {
			desired:  directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone, pool}})},
			existing: directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}})},
			want:     &directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone, pool}})},
		},
		"a term added: refused": {
			desired: directives{affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notVM}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}})},
			existing: directives{affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notVM}})},
			refused:  true,
		},
		"a requirement changed: refused": {
			desired:  directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{pool}})},
			existing: directives{affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}})},
			refused:  true,
		},
		"preferred terms changed; the required ones stay": {
			desired: directives{affinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution:  required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notVM}}).RequiredDuringSchedulingIgnoredDuringExecution,
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{preferred(10, pool)}}},
			existing: directives{affinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution:  required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notVM}}).RequiredDuringSchedulingIgnoredDuringExecution,
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{preferred(10, zone)}}},
			want: &directives{affinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution:  required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notVM}}).RequiredDuringSchedulingIgnoredDuringExecution,
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{preferred(10, pool)}}},
		},
		"a preferred term of the super cluster's own stays": {
			existing: directives{affinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{preferred(10, zone)}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			desired, existing := spec(tc.desired, true), spec(tc.existing, !tc.ungated)
			before := existing.DeepCopy()
			got, refused := gatedDirectives(desired, existing)
			if refused != tc.refused {
				t.Errorf("refused = %t, want %t", refused, tc.refused)
			}
			if diff := cmp.Diff(before, existing); diff != "" {
				t.Errorf("existing changed (-before +after):\n%s", diff)
			}
			var want *corev1.PodSpec
			if tc.want != nil {
				want = spec(*tc.want, true)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("gatedDirectives (-want +got):\n%s", diff)
			}
			// What the super apiserver says of the update: the result, or for a refused change
			// the existing pod with desired's directives as they are.
			updated := got
			if refused {
				updated = existing.DeepCopy()
				updated.NodeSelector, updated.Affinity, updated.Tolerations = desired.NodeSelector, desired.Affinity, desired.Tolerations
			}
			if updated == nil {
				return
			}
			errs := validatePodUpdate(t, updated, existing)
			if tc.refused != (len(errs) > 0) {
				t.Errorf("upstream validation of the update: %v; want refused %t", errs, tc.refused)
			}
		})
	}
}

// validatePodUpdate is upstream's validation of an update of a pod of spec old to spec new.
func validatePodUpdate(t *testing.T, newSpec, oldSpec *corev1.PodSpec) field.ErrorList {
	t.Helper()
	internal := func(spec *corev1.PodSpec) *core.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: "1"}, Spec: *spec.DeepCopy()}
		p.Spec.Containers = []corev1.Container{{Name: "main", Image: "vnest.local/busybox:1"}}
		k8scorev1.SetObjectDefaults_Pod(p)
		var out core.Pod
		if err := k8scorev1.Convert_v1_Pod_To_core_Pod(p, &out, nil); err != nil {
			t.Fatal(err)
		}
		return &out
	}
	return corevalidation.ValidatePodUpdate(internal(newSpec), internal(oldSpec), corevalidation.PodValidationOptions{})
}

// TestSyncGatedPodDirectives: a nodeSelector and a toleration the tenant adds to its gated pod
// (as Kueue does on admission) reach the super pod while it is gated, translated (the policy's
// selector kept); the gate's removal then leaves the super pod ungated with them.
func TestSyncGatedPodDirectives(t *testing.T) {
	spot := corev1.Toleration{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	tp := MakePod("default", "web").Obj()
	tp.Generation = 1
	tp.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
	h := newHarness(t, nil, []object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, tp})
	vc := &v1alpha1.VirtualCluster{Spec: v1alpha1.VirtualClusterSpec{Policy: &v1alpha1.PolicySpec{NodeSelector: map[string]string{"pool": "tenants"}}}}
	h.t.settings.Store(settingsOf(vc))
	// round syncs after the tenant pod changed as change says, with the super pod of the last round.
	round := func(change func(*corev1.Pod)) *corev1.Pod {
		t.Helper()
		change(tp)
		tp.Generation++
		if err := h.t.index[kindPod].Update(tp.DeepCopy()); err != nil {
			t.Fatal(err)
		}
		h.super.ClearActions()
		sp := h.syncWebDown(t)
		if err := h.s.superIndex[kindPod].Update(sp); err != nil {
			t.Fatal(err)
		}
		return sp
	}

	sp := round(func(*corev1.Pod) {})
	if diff := cmp.Diff(map[string]string{"pool": "tenants"}, sp.Spec.NodeSelector); diff != "" || len(sp.Spec.SchedulingGates) != 1 {
		t.Fatalf("created super pod: gates %v, nodeSelector (-want +got):\n%s", sp.Spec.SchedulingGates, diff)
	}

	sp = round(func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{"flavor": "spot"}
		p.Spec.Tolerations = []corev1.Toleration{spot}
	})
	if diff := cmp.Diff([]string{"update pods " + testSuperNS + "/web"}, writes(h.super)); diff != "" {
		t.Errorf("super writes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"pool": "tenants", "flavor": "spot"}, sp.Spec.NodeSelector); diff != "" {
		t.Errorf("gated super pod's nodeSelector (-want +got):\n%s", diff)
	}
	if len(sp.Spec.SchedulingGates) != 1 || !slices.Contains(sp.Spec.Tolerations, spot) {
		t.Errorf("gated super pod: gates %v, tolerations %v", sp.Spec.SchedulingGates, sp.Spec.Tolerations)
	}

	sp = round(func(p *corev1.Pod) { p.Spec.SchedulingGates = nil })
	if diff := cmp.Diff(map[string]string{"pool": "tenants", "flavor": "spot"}, sp.Spec.NodeSelector); diff != "" || len(sp.Spec.SchedulingGates) != 0 {
		t.Errorf("ungated super pod: gates %v, nodeSelector (-want +got):\n%s", sp.Spec.SchedulingGates, diff)
	}
}

// TestSyncRunningPodTolerations: a toleration the tenant adds to a running pod (to stay on a node
// tainted NoExecute) goes down with the super pod's update, translated (the policy's toleration
// not repeated), and the super pod's own tolerations stay.
func TestSyncRunningPodTolerations(t *testing.T) {
	policy := corev1.Toleration{Key: "tenants", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	superOwn := corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)}
	maintenance := corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	sp := MakePod(testSuperNS, "web").Owned("uid-web").Node("node-1").Phase(corev1.PodRunning).HostIP("192.0.2.2").Obj()
	sp.Spec.Tolerations = []corev1.Toleration{policy, superOwn}
	tp := MakePod("default", "web").Node("node-1").Phase(corev1.PodRunning).HostIP("192.0.2.2").Obj()
	tp.Spec.Tolerations = []corev1.Toleration{maintenance}
	h := newHarness(t, []object{sp}, []object{tp})
	h.t.settings.Store(&settings{policy: v1alpha1.PolicySpec{Tolerations: []corev1.Toleration{policy}}})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	var updated *corev1.Pod
	for _, a := range h.super.Actions() {
		if u, ok := a.(k8stesting.UpdateAction); ok && a.GetResource().Resource == "pods" && a.GetSubresource() == "" {
			updated = u.GetObject().(*corev1.Pod)
		}
	}
	if updated == nil {
		t.Fatalf("super writes %q, want the super pod's update", writes(h.super))
	}
	if diff := cmp.Diff([]corev1.Toleration{policy, superOwn, maintenance}, updated.Spec.Tolerations); diff != "" {
		t.Errorf("super pod's tolerations (-want +got):\n%s", diff)
	}
}

// TestReplaceGatedPod: a gated super pod whose translated directives changed as no update may
// (here the policy's selector) is made again when the tenant pod changed since it was written;
// otherwise the down update leaves its directives alone, so a super pod the super cluster's
// admission changed is not made again on every round.
func TestReplaceGatedPod(t *testing.T) {
	for _, tc := range []struct {
		name       string
		generation int64
		wantWrites []string
	}{
		{name: "tenant pod changed: made again", generation: 3, wantWrites: []string{"delete pods " + testSuperNS + "/web"}},
		{name: "tenant pod as written: left", generation: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
			sp := MakePod(testSuperNS, "web").Owned("uid-web").Annotation(annotationTenantGeneration, "2").Obj()
			sp.Spec.SchedulingGates, sp.Spec.NodeSelector = gate, map[string]string{"pool": "old"}
			tp := MakePod("default", "web").Obj()
			tp.Generation, tp.Spec.SchedulingGates = tc.generation, gate
			h := newHarness(t, []object{sp}, []object{tp})
			vc := &v1alpha1.VirtualCluster{Spec: v1alpha1.VirtualClusterSpec{Policy: &v1alpha1.PolicySpec{NodeSelector: map[string]string{"pool": "new"}}}}
			h.t.settings.Store(settingsOf(vc))
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantWrites, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
		})
	}
}
