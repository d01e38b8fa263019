package syncer

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// taintedVirtualNode is a virtual Node with taints, of which superIDs (key:Effect, comma
// separated) came from the super node.
func taintedVirtualNode(name, superIDs string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{ownership.LabelVirtualNode: "true"},
			Annotations: map[string]string{ownership.AnnotationSuperTaints: superIDs}},
		Spec: corev1.NodeSpec{Taints: taints},
	}
}

func taint(key, value string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Value: value, Effect: effect}
}

func TestVirtualNodeTaints(t *testing.T) {
	dedicated := taint("dedicated", "acme", corev1.TaintEffectNoSchedule)
	gpu := taint("gpu", "", corev1.TaintEffectNoSchedule)
	unreachable := taint(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoExecute)
	super := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{dedicated, gpu, unreachable}}}
	mine := taint("maintenance", "", corev1.TaintEffectNoExecute)
	for _, tc := range []struct {
		name        string
		tolerations []corev1.Toleration
		existing    *corev1.Node
		want        []corev1.Taint
		wantIDs     string
	}{
		{name: "a new virtual Node: the super taints", want: []corev1.Taint{dedicated, gpu, unreachable},
			wantIDs: "dedicated:NoSchedule,gpu:NoSchedule,node.kubernetes.io/unreachable:NoExecute"},
		{name: "taints the policy tolerates are not shown",
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "acme", Effect: corev1.TaintEffectNoSchedule}},
			want:        []corev1.Taint{gpu, unreachable}, wantIDs: "gpu:NoSchedule,node.kubernetes.io/unreachable:NoExecute"},
		{name: "the tenant's own taints stay; one gone from the super node goes",
			existing: taintedVirtualNode("vm", "dedicated:NoSchedule,gone:NoExecute,gpu:NoSchedule", dedicated, gpu, taint("gone", "", corev1.TaintEffectNoExecute), mine),
			want:     []corev1.Taint{dedicated, gpu, unreachable, mine},
			wantIDs:  "dedicated:NoSchedule,gpu:NoSchedule,node.kubernetes.io/unreachable:NoExecute"},
		{name: "the super node's wins for the same key and effect",
			existing: taintedVirtualNode("vm", "", taint("gpu", "tenant", corev1.TaintEffectNoSchedule), taint("gpu", "", corev1.TaintEffectNoExecute)),
			want:     []corev1.Taint{dedicated, gpu, unreachable, taint("gpu", "", corev1.TaintEffectNoExecute)},
			wantIDs:  "dedicated:NoSchedule,gpu:NoSchedule,node.kubernetes.io/unreachable:NoExecute"},
		{name: "a Node of an older syncer (no annotation) has no taints of the tenant's",
			existing: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{mine}}},
			want:     []corev1.Taint{dedicated, gpu, unreachable},
			wantIDs:  "dedicated:NoSchedule,gpu:NoSchedule,node.kubernetes.io/unreachable:NoExecute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := virtualNode(super, tc.tolerations, metav1.Now())
			withTenantTaints(want, tc.existing)
			if diff := cmp.Diff(tc.want, want.Spec.Taints); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
			if got := want.Annotations[ownership.AnnotationSuperTaints]; got != tc.wantIDs {
				t.Errorf("%s = %q, want %q", ownership.AnnotationSuperTaints, got, tc.wantIDs)
			}
		})
	}
}

func TestAvoidTenantTaints(t *testing.T) {
	nodes := []*corev1.Node{
		taintedVirtualNode("vm-1", ""),
		taintedVirtualNode("vm-2", "", taint("maintenance", "", corev1.TaintEffectNoExecute)),
		taintedVirtualNode("vm-3", "", taint("color", "blue", corev1.TaintEffectNoSchedule), taint("slow", "", corev1.TaintEffectPreferNoSchedule)),
		taintedVirtualNode("vm-4", "super:NoSchedule", taint("super", "", corev1.TaintEffectNoSchedule)),
	}
	notIn := func(n string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpNotIn, Values: []string{n}}
	}
	zone := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	required := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	tolerateAll := []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		spec  corev1.PodSpec
		want  *corev1.PodSpec // nil: unchanged
	}{
		{name: "no tenant taints", nodes: nodes[:1]},
		{name: "Nodes with tenant NoSchedule or NoExecute taints are excluded, a requirement each; super taints are the super scheduler's",
			want: &corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notIn("vm-2"), notIn("vm-3")}})}},
		{name: "a tolerated taint does not exclude",
			spec: corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "color", Operator: corev1.TolerationOpEqual, Value: "blue", Effect: corev1.TaintEffectNoSchedule}}},
			want: &corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "color", Operator: corev1.TolerationOpEqual, Value: "blue", Effect: corev1.TaintEffectNoSchedule}},
				Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notIn("vm-2")}})}},
		{name: "tolerating everything: unchanged", spec: corev1.PodSpec{Tolerations: tolerateAll}},
		{name: "every affinity term excludes the Nodes",
			spec: corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists}}, Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}}, corev1.NodeSelectorTerm{})},
			want: &corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists}}, Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{zone}, MatchFields: []corev1.NodeSelectorRequirement{notIn("vm-3")}},
				corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{notIn("vm-3")}})}},
		{name: "a pod that names its node: unchanged", spec: corev1.PodSpec{NodeName: "vm-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nodes
			if tc.nodes != nil {
				ns = tc.nodes
			}
			checkPlacement(t, func(spec *corev1.PodSpec) *corev1.PodSpec { return avoidTenantTaints(spec, ns) }, tc.spec, tc.want)
		})
	}
}

// TestSyncNodeKeepsTenantTaints: a taint the tenant put on its virtual Node stays through a
// sync, next to the super node's; the super node is not written.
func TestSyncNodeKeepsTenantTaints(t *testing.T) {
	superTaint := taint("dedicated", "", corev1.TaintEffectNoSchedule)
	mine := taint("maintenance", "", corev1.TaintEffectNoExecute)
	super := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{superTaint}}}
	virtual := taintedVirtualNode("vm", "dedicated:NoSchedule", superTaint, mine)
	virtual.UID = "v"
	pod := MakePod(testSuperNS, "web").Owned("uid-web").Node("vm").Phase(corev1.PodRunning).Obj()
	h := newHarness(t, []object{super, pod}, []object{virtual})
	if err := h.s.syncNode(testContext(t), h.t, "vm"); err != nil {
		t.Fatal(err)
	}
	got, err := h.tenantCS.CoreV1().Nodes().Get(t.Context(), "vm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]corev1.Taint{superTaint, mine}, got.Spec.Taints); diff != "" {
		t.Errorf("virtual Node taints (-want +got):\n%s", diff)
	}
	if w := writes(h.super); len(w) != 0 {
		t.Errorf("super writes %v, want none", w)
	}
}

// TestPodAvoidsTenantTaint: a tenant pod goes down with its node affinity excluding a virtual
// Node the tenant tainted NoSchedule.
func TestPodAvoidsTenantTaint(t *testing.T) {
	h := newHarness(t, nil, []object{MakePod("default", "web").Obj(), taintedVirtualNode("vm", "", taint("maintenance", "", corev1.TaintEffectNoSchedule))})
	sp := h.syncWebDown(t)
	if sp.Spec.Affinity == nil || sp.Spec.Affinity.NodeAffinity == nil || sp.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Fatalf("super pod affinity %v; want the tainted Node excluded", sp.Spec.Affinity)
	}
	terms := sp.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	want := []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"vm"}}}}}
	if !cmp.Equal(want, terms) {
		t.Errorf("super pod node affinity terms %v, want %v", terms, want)
	}
}

// BenchmarkOnTenantNodes: what placing a pod among its tenant's virtual Nodes costs (the Node
// cache listed, labels and taints of the tenant's own looked for), for a pod without node
// requirements and 12 Nodes without labels or taints of the tenant's (BenchmarkSyncer's
// case). It runs once per pod translate and once more per sync of an unscheduled pod:
//
//	go test ./syncer -run '^$' -bench OnTenantNodes
func BenchmarkOnTenantNodes(b *testing.B) {
	var nodes []object
	for i := range 12 {
		n := virtualNodeWith(fmt.Sprintf("vm-%d", i), "kubernetes.io/hostname,zone", map[string]string{"kubernetes.io/hostname": "vm", "zone": "a"})
		n.Annotations[ownership.AnnotationSuperTaints] = ""
		nodes = append(nodes, n)
	}
	h := newHarness(&testing.T{}, nil, nodes)
	p := MakePod("default", "web").Obj()
	b.ReportAllocs()
	for b.Loop() {
		if got := h.t.onTenantNodes(p); got != p {
			b.Fatal("pod changed")
		}
	}
}
