package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func TestTenantObservedGenerations(t *testing.T) {
	cond := func(typ corev1.PodConditionType, gen int64) corev1.PodCondition {
		return corev1.PodCondition{Type: typ, Status: corev1.ConditionTrue, ObservedGeneration: gen}
	}
	// super builds a super pod at generation gen that reflects tenant generation tenantGen ("":
	// no annotation), whose kubelet observed observed.
	super := func(gen int64, tenantGen string, observed int64, conds ...corev1.PodCondition) *corev1.Pod {
		w := MakePod(testSuperNS, "web").Owned("uid-web")
		if tenantGen != "" {
			w.Annotation(annotationTenantGeneration, tenantGen)
		}
		p := w.Obj()
		p.Generation = gen
		p.Status.ObservedGeneration = observed
		p.Status.Conditions = conds
		return p
	}
	// tenant is the tenant pod at generation 7 that last showed observed.
	tenant := func(observed int64, conds ...corev1.PodCondition) *corev1.Pod {
		p := MakePod("default", "web").Obj()
		p.Generation = 7
		p.Status.ObservedGeneration = observed
		p.Status.Conditions = conds
		return p
	}
	cases := map[string]struct {
		super, tenant  *corev1.Pod
		wantObserved   int64
		wantConditions []corev1.PodCondition
	}{
		"kubelet saw the latest super spec: the tenant generation it reflects": {
			super:        super(3, "7", 3, cond(corev1.PodReady, 3)),
			tenant:       tenant(5, cond(corev1.PodReady, 5)),
			wantObserved: 7, wantConditions: []corev1.PodCondition{cond(corev1.PodReady, 7)},
		},
		"the super spec reflects an older tenant generation": {
			super:        super(3, "6", 3),
			tenant:       tenant(5),
			wantObserved: 6,
		},
		"kubelet has not seen the latest super spec: the tenant keeps its value": {
			super:        super(4, "7", 3, cond(corev1.PodReady, 3)),
			tenant:       tenant(5, cond(corev1.PodReady, 5)),
			wantObserved: 5, wantConditions: []corev1.PodCondition{cond(corev1.PodReady, 5)},
		},
		"conditions map one by one": {
			super:        super(4, "7", 4, cond(corev1.PodReady, 4), cond(corev1.PodScheduled, 1), cond(corev1.PodResizeInProgress, 2)),
			tenant:       tenant(5, cond(corev1.PodReady, 5), cond(corev1.PodScheduled, 1)),
			wantObserved: 7,
			wantConditions: []corev1.PodCondition{
				cond(corev1.PodReady, 7), cond(corev1.PodScheduled, 1), cond(corev1.PodResizeInProgress, 0),
			},
		},
		"no annotation (a super pod from before): the tenant keeps its values": {
			super:        super(3, "", 3, cond(corev1.PodReady, 3)),
			tenant:       tenant(2, cond(corev1.PodReady, 2)),
			wantObserved: 2, wantConditions: []corev1.PodCondition{cond(corev1.PodReady, 2)},
		},
		"a garbled annotation is no generation": {
			super:        super(3, "seven", 3),
			tenant:       tenant(2),
			wantObserved: 2,
		},
		"nothing observed yet": {
			super:        super(1, "1", 0, cond(corev1.PodScheduled, 0)),
			tenant:       tenant(0),
			wantObserved: 0, wantConditions: []corev1.PodCondition{cond(corev1.PodScheduled, 0)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := tc.super.DeepCopy()
			got := tenantObservedGenerations(podStatusUp(tc.super), tc.super, tc.tenant)
			if got.ObservedGeneration != tc.wantObserved {
				t.Errorf("observedGeneration = %d, want %d", got.ObservedGeneration, tc.wantObserved)
			}
			if diff := cmp.Diff(tc.wantConditions, got.Conditions); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.super); diff != "" {
				t.Errorf("the super pod changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSyncPodGeneration: the tenant generation goes down with the spec change it came with, in
// one update, also when nothing of the change is carried down; the observed generation comes
// up as the tenant's.
func TestSyncPodGeneration(t *testing.T) {
	tenantPod := func(gen int64, mutate func(*corev1.Pod)) *corev1.Pod {
		p := MakePod("default", "web").Obj()
		p.Generation = gen
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	superPod := func(gen int64, tenantGen string) *corev1.Pod {
		p := MakePod(testSuperNS, "web").Owned("uid-web").Annotation(annotationTenantGeneration, tenantGen).Obj()
		p.Generation = gen
		return p
	}
	cases := map[string]struct {
		tenant, super *corev1.Pod
		wantTenantGen string                 // stamped on the super pod by the update
		check         func(*corev1.Pod) bool // what else the update carries
	}{
		"image and generation together": {
			tenant:        tenantPod(2, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "vnest.local/busybox:2" }),
			super:         superPod(1, "1"),
			wantTenantGen: "2",
			check:         func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image == "vnest.local/busybox:2" },
		},
		"a change that stays in the tenant still stamps its generation": {
			tenant: tenantPod(3, func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
			}),
			super:         superPod(1, "2"),
			wantTenantGen: "3",
		},
		"activeDeadlineSeconds": {
			tenant:        tenantPod(4, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](4999) }),
			super:         superPod(3, "3"),
			wantTenantGen: "4",
			check:         func(p *corev1.Pod) bool { return ptr.Deref(p.Spec.ActiveDeadlineSeconds, 0) == 4999 },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{tc.super}, []object{tc.tenant})
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatalf("syncPod: %v", err)
			}
			if diff := cmp.Diff([]string{"update pods demo-5c9a8459-default/web"}, writes(h.super)); diff != "" {
				t.Fatalf("super writes (-want +got):\n%s", diff)
			}
			sent := h.super.Actions()[0].(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
			if got := sent.Annotations[annotationTenantGeneration]; got != tc.wantTenantGen {
				t.Errorf("tenant generation on the super pod = %q, want %q", got, tc.wantTenantGen)
			}
			if tc.check != nil && !tc.check(sent) {
				t.Errorf("the update lacks the spec change: %+v", sent.Spec)
			}
		})
	}

	t.Run("observed generation comes up as the tenant's", func(t *testing.T) {
		super := superPod(3, "5")
		super.Spec.NodeName = "node-1"
		super.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.1", ObservedGeneration: 3,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, ObservedGeneration: 3}}}
		tenant := tenantPod(5, func(p *corev1.Pod) { p.Spec.NodeName = "node-1" })
		h := newHarness(t, []object{super}, []object{tenant})
		if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
			t.Fatalf("syncPod: %v", err)
		}
		if diff := cmp.Diff([]string{"update pods/status default/web"}, writes(h.tenantCS)); diff != "" {
			t.Fatalf("tenant writes (-want +got):\n%s", diff)
		}
		st := h.tenantCS.Actions()[0].(k8stesting.UpdateAction).GetObject().(*corev1.Pod).Status
		if st.ObservedGeneration != 5 || st.Conditions[0].ObservedGeneration != 5 {
			t.Errorf("tenant status observedGeneration %d, Ready's %d; want 5 and 5", st.ObservedGeneration, st.Conditions[0].ObservedGeneration)
		}
	})
}
