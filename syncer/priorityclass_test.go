package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/internal/ownership"
)

func publishedPriorityClass(name string) *schedulingv1.PriorityClass {
	return &schedulingv1.PriorityClass{
		ObjectMeta:       metav1.ObjectMeta{Name: name, UID: "super-pc-uid", Labels: map[string]string{ownership.LabelPublished: "true"}},
		Value:            1000,
		Description:      "batch",
		PreemptionPolicy: ptr.To(corev1.PreemptNever),
	}
}

func TestTranslatePriorityClass(t *testing.T) {
	cases := map[string]struct {
		in     *schedulingv1.PriorityClass
		want   *schedulingv1.PriorityClass
		copied bool
	}{
		"published class": {
			in: publishedPriorityClass("gold"),
			want: &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "gold", Labels: map[string]string{ownership.LabelMirror: "true"}},
				Value: 1000, Description: "batch", PreemptionPolicy: ptr.To(corev1.PreemptNever)},
			copied: true,
		},
		"system class is never copied": {in: publishedPriorityClass("system-cluster-critical")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, copied := translatePriorityClass(tc.in)
			if copied != tc.copied {
				t.Fatalf("copied = %v, want %v", copied, tc.copied)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("translatePriorityClass (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSyncPriorityClass(t *testing.T) {
	copied, _ := translatePriorityClass(publishedPriorityClass("gold"))
	copied.UID = "copy-uid"
	revalued := copied.DeepCopy()
	revalued.Value = 10
	redescribed := copied.DeepCopy()
	redescribed.Description = "old"
	own := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "gold", UID: "own"}, Value: 5}
	cases := map[string]struct {
		super, tenant []object
		want          []string
		wantErr       bool
		wantEvent     bool
	}{
		"published class is copied":          {super: []object{publishedPriorityClass("gold")}, want: []string{"create priorityclasses /gold"}},
		"copy in sync":                       {super: []object{publishedPriorityClass("gold")}, tenant: []object{copied}},
		"a new description is updated":       {super: []object{publishedPriorityClass("gold")}, tenant: []object{redescribed}, want: []string{"update priorityclasses /gold"}},
		"a new value replaces the copy":      {super: []object{publishedPriorityClass("gold")}, tenant: []object{revalued}, want: []string{"delete priorityclasses /gold"}, wantErr: true},
		"unpublished class's copy goes":      {tenant: []object{copied}, want: []string{"delete priorityclasses /gold"}},
		"the tenant's own class stays":       {super: []object{publishedPriorityClass("gold")}, tenant: []object{own}, wantEvent: true},
		"the tenant's own class stays alone": {tenant: []object{own}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			if err := h.s.syncPriorityClass(testContext(t), h.t, "gold"); (err != nil) != tc.wantErr {
				t.Fatalf("syncPriorityClass = %v, want an error: %v", err, tc.wantErr)
			}
			checkMirrorSync(t, h, tc.want, tc.wantEvent)
		})
	}
}

// TestSyncPriorityClassLeavesSystemClasses: a system- class is never the syncer's, whatever
// labels the tenant gives it (it cannot be deleted: a delete would fail and be retried for ever).
func TestSyncPriorityClassLeavesSystemClasses(t *testing.T) {
	forged := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical", UID: "sys",
		Labels: map[string]string{ownership.LabelMirror: "true"}}, Value: 2000001000}
	h := newHarness(t, nil, []object{forged})
	if err := h.s.syncPriorityClass(testContext(t), h.t, forged.Name); err != nil {
		t.Fatal(err)
	}
	checkMirrorSync(t, h, nil, false)
}

// TestPublishedPriorityClassGoesDown: a pod naming a published class keeps the name on its super
// pod (without value or policy, which the super admission fills in); any other class is dropped,
// including a class the tenant labelled as a mirror itself: a system- class, or one the super
// cluster does not publish.
func TestPublishedPriorityClassGoesDown(t *testing.T) {
	copied, _ := translatePriorityClass(publishedPriorityClass("gold"))
	own := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Value: 5}
	forged := func(name string) *schedulingv1.PriorityClass {
		return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{ownership.LabelMirror: "true"}}, Value: 5}
	}
	// The super cluster publishes system-node-critical by mistake: still never kept.
	super := []object{publishedPriorityClass("gold"), publishedPriorityClass("system-node-critical")}
	tenant := []object{copied, own, forged("system-node-critical"), forged("silver")}
	cases := map[string]struct {
		class, want string
	}{
		"published":                     {class: "gold", want: "gold"},
		"own":                           {class: "mine"},
		"unknown":                       {class: "gone"},
		"none":                          {},
		"forged mirror of a system one": {class: "system-node-critical"},
		"forged mirror, not published":  {class: "silver"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, super, tenant)
			p := MakePod("default", "web").Obj()
			p.Spec.PriorityClassName, p.Spec.Priority, p.Spec.PreemptionPolicy = tc.class, ptr.To[int32](1000), ptr.To(corev1.PreemptNever)
			got := podDown.translate(h.t, p)
			if got.Spec.PriorityClassName != tc.want || got.Spec.Priority != nil || got.Spec.PreemptionPolicy != nil {
				t.Errorf("super pod priority: class %q value %v policy %v; want class %q, no value, no policy",
					got.Spec.PriorityClassName, got.Spec.Priority, got.Spec.PreemptionPolicy, tc.want)
			}
		})
	}
}
