package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// virtualNodeWith is a virtual Node whose labels superKeys came from the super node.
func virtualNodeWith(name, superKeys string, labels map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{ownership.LabelVirtualNode: "true"},
		Annotations: map[string]string{ownership.AnnotationSuperLabels: superKeys}}}
	for k, v := range labels {
		n.Labels[k] = v
	}
	return n
}

func TestWithTenantLabels(t *testing.T) {
	super := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", Labels: map[string]string{"kubernetes.io/hostname": "vm", "zone": "a"}}}
	for _, tc := range []struct {
		name     string
		existing *corev1.Node
		want     map[string]string
	}{
		{name: "a new virtual Node: the super labels", want: map[string]string{"kubernetes.io/hostname": "vm", "zone": "a"}},
		{name: "the tenant's own labels stay; a label gone from the super node goes",
			existing: virtualNodeWith("vm", "disk,kubernetes.io/hostname,zone", map[string]string{"kubernetes.io/hostname": "vm", "zone": "a", "disk": "ssd", "color": "blue"}),
			want:     map[string]string{"kubernetes.io/hostname": "vm", "zone": "a", "color": "blue"}},
		{name: "the super node's value wins for its keys",
			existing: virtualNodeWith("vm", "kubernetes.io/hostname", map[string]string{"kubernetes.io/hostname": "vm", "zone": "b"}),
			want:     map[string]string{"kubernetes.io/hostname": "vm", "zone": "a"}},
		{name: "a Node of an older syncer (no annotation) has no labels of the tenant's",
			existing: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", Labels: map[string]string{"color": "blue"}}},
			want:     map[string]string{"kubernetes.io/hostname": "vm", "zone": "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := virtualNode(super, nil, metav1.Now())
			withTenantLabels(want, tc.existing, super)
			tc.want[ownership.LabelVirtualNode] = "true"
			if diff := cmp.Diff(tc.want, want.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if got := want.Annotations[ownership.AnnotationSuperLabels]; got != "kubernetes.io/hostname,zone" {
				t.Errorf("%s = %q, want the super node's keys", ownership.AnnotationSuperLabels, got)
			}
		})
	}
}

// checkPlacement runs place (pinTenantLabels, avoidTenantTaints on a set of Nodes) on a copy of
// spec. want nil: spec must come back as it is (the same pointer, unchanged); otherwise the
// result must be want, and spec must not have been changed in place. Either way a pod of the
// result must pass upstream's validation, as the super apiserver validates the super pod.
func checkPlacement(t *testing.T, place func(*corev1.PodSpec) *corev1.PodSpec, spec corev1.PodSpec, want *corev1.PodSpec) {
	t.Helper()
	in := spec.DeepCopy()
	got := place(in)
	pod := MakePod(testSuperNS, "web").Obj()
	pod.Spec.NodeName, pod.Spec.NodeSelector, pod.Spec.Affinity, pod.Spec.Tolerations = got.NodeName, got.NodeSelector, got.Affinity, got.Tolerations
	if errs := validatePodCreate(t, pod); len(errs) > 0 {
		t.Errorf("the super cluster would refuse a pod so placed: %v", errs.ToAggregate())
	}
	if want == nil {
		if got != in || !cmp.Equal(*in, spec) {
			t.Errorf("spec changed:\n%s", cmp.Diff(spec, *got))
		}
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if !cmp.Equal(*in, spec) {
		t.Error("the tenant pod's spec was changed in place")
	}
}

func TestPinTenantLabels(t *testing.T) {
	nodes := []*corev1.Node{
		virtualNodeWith("vm-1", "zone", map[string]string{"zone": "a", "color": "blue"}),
		virtualNodeWith("vm-2", "zone", map[string]string{"zone": "b", "color": "green"}),
		virtualNodeWith("vm-3", "zone", map[string]string{"zone": "b", "color": "blue"}),
	}
	expr := func(key string, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}
	}
	required := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	names := func(n string) corev1.NodeSelectorRequirement { return expr(metav1.ObjectNameField, n) }
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		spec  corev1.PodSpec
		want  *corev1.PodSpec // nil: unchanged
	}{
		{name: "no node requirements", spec: corev1.PodSpec{}},
		{name: "a super label only", spec: corev1.PodSpec{NodeSelector: map[string]string{"zone": "a"}}},
		{name: "nodeSelector on a tenant label: the Nodes that have it, a term each", spec: corev1.PodSpec{NodeSelector: map[string]string{"color": "blue"}},
			want: &corev1.PodSpec{NodeSelector: map[string]string{}, Affinity: required(
				corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{names("vm-1")}},
				corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{names("vm-3")}})}},
		{name: "an affinity term several Nodes meet: a term for each",
			spec: corev1.PodSpec{Affinity: required(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("color", "blue", "green"), expr("zone", "b")}})},
			want: &corev1.PodSpec{Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", "b")}, MatchFields: []corev1.NodeSelectorRequirement{names("vm-2")}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", "b")}, MatchFields: []corev1.NodeSelectorRequirement{names("vm-3")}})}},
		{name: "with a super label: both must hold, the super one stays", spec: corev1.PodSpec{NodeSelector: map[string]string{"color": "blue", "zone": "b"}},
			want: &corev1.PodSpec{NodeSelector: map[string]string{"zone": "b"}, Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{names("vm-3")}})}},
		{name: "no Node has the label value: unchanged (Pending)", spec: corev1.PodSpec{NodeSelector: map[string]string{"color": "red"}}},
		{name: "affinity terms each get their Nodes; a term no Node meets goes",
			spec: corev1.PodSpec{Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("color", "green"), expr("zone", "b")}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("color", "red")}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("color", "blue"), expr("zone", "a")}},
			)},
			want: &corev1.PodSpec{Affinity: required(
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", "b")}, MatchFields: []corev1.NodeSelectorRequirement{names("vm-2")}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr("zone", "a")}, MatchFields: []corev1.NodeSelectorRequirement{names("vm-1")}},
			)}},
		{name: "a daemon pod: its node and the label",
			spec: corev1.PodSpec{NodeSelector: map[string]string{"color": "blue"}, Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{names("vm-3")}})},
			want: &corev1.PodSpec{NodeSelector: map[string]string{}, Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{names("vm-3"), names("vm-3")}})}},
		{name: "a daemon pod whose node lost the label: unchanged (Pending)",
			spec: corev1.PodSpec{NodeSelector: map[string]string{"color": "blue"}, Affinity: required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{names("vm-2")}})}},
		{name: "labels of Nodes from an older syncer are not the tenant's",
			nodes: []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "vm-1", Labels: map[string]string{"color": "blue"}}}},
			spec:  corev1.PodSpec{NodeSelector: map[string]string{"color": "blue"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nodes
			if tc.nodes != nil {
				ns = tc.nodes
			}
			checkPlacement(t, func(spec *corev1.PodSpec) *corev1.PodSpec { return pinTenantLabels(spec, ns) }, tc.spec, tc.want)
		})
	}
}

// TestSyncNodeKeepsTenantLabels: a label the tenant put on its virtual Node stays through a
// sync; one the super node lost goes; the super node is not written.
func TestSyncNodeKeepsTenantLabels(t *testing.T) {
	super := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", Labels: map[string]string{"zone": "a"}}}
	virtual := virtualNodeWith("vm", "disk,zone", map[string]string{"zone": "a", "disk": "ssd", "color": "blue"})
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
	want := map[string]string{"zone": "a", "color": "blue", ownership.LabelVirtualNode: "true"}
	if diff := cmp.Diff(want, got.Labels); diff != "" {
		t.Errorf("virtual Node labels (-want +got):\n%s", diff)
	}
	if got.Annotations[ownership.AnnotationSuperLabels] != "zone" {
		t.Errorf("super label keys %q, want zone", got.Annotations[ownership.AnnotationSuperLabels])
	}
	if w := writes(h.super); len(w) != 0 {
		t.Errorf("super writes %v, want none", w)
	}
}

// TestPodOnTenantLabel: a tenant pod that selects a label the tenant put on a virtual Node goes
// down pinned to that Node, without the label in its node selector.
func TestPodOnTenantLabel(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.NodeSelector = map[string]string{"color": "blue"}
	h := newHarness(t, nil, []object{pod, virtualNodeWith("vm", "zone", map[string]string{"zone": "a", "color": "blue"})})
	ctx := testContext(t)
	sp := h.syncWebDown(t)
	if _, ok := sp.Spec.NodeSelector["color"]; ok || sp.Spec.Affinity == nil || sp.Spec.Affinity.NodeAffinity == nil {
		t.Fatalf("super pod nodeSelector %v, affinity %v; want the tenant label replaced by the Node's name", sp.Spec.NodeSelector, sp.Spec.Affinity)
	}
	terms := sp.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if want := []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{"vm"}}}}}; !cmp.Equal(want, terms) {
		t.Errorf("super pod node affinity terms %v, want %v", terms, want)
	}
	if tp, _ := h.tenantCS.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{}); tp.Spec.NodeSelector["color"] != "blue" {
		t.Errorf("the tenant pod's nodeSelector changed: %v", tp.Spec.NodeSelector)
	}
}
