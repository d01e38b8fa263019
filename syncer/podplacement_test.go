package syncer

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
