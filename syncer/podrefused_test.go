package syncer

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
)

// TestSyncPodRefusedSubresource: a resize or an ephemeral container the super cluster refuses is
// told to the tenant once, in the round that tried it, and recorded on the super pod: the next
// round brings the rest of the pod (here: its new image) without trying it again or another
// event, and so does a syncer restarted from the super pod as that round left it. What the
// tenant asks for anew (a resize to other values, another container) is tried.
func TestSyncPodRefusedSubresource(t *testing.T) {
	cases := map[string]struct {
		ask, askAgain func(*corev1.Pod)
		check         func(t *testing.T, tp *corev1.Pod) // the tenant pod after the second round
	}{
		"ephemeralcontainers": {
			ask: func(p *corev1.Pod) { p.Spec.EphemeralContainers = []corev1.EphemeralContainer{ephemeral("debugger")} },
			askAgain: func(p *corev1.Pod) {
				p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ephemeral("debugger2"))
			},
		},
		"resize": {
			ask:      func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("25m", "40Mi") },
			askAgain: func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("30m", "40Mi") },
			check: func(t *testing.T, tp *corev1.Pod) {
				i := slices.IndexFunc(tp.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodResizePending })
				if i < 0 || tp.Status.Conditions[i].Reason != corev1.PodReasonInfeasible || !strings.Contains(tp.Status.Conditions[i].Message, "violates PodSecurity") {
					t.Errorf("tenant pod conditions %+v; want PodResizePending Infeasible with the refusal", tp.Status.Conditions)
				}
			},
		},
	}
	for sub, tc := range cases {
		t.Run(sub, func(t *testing.T) {
			tenant := MakePod("default", "web").Image("vnest.local/busybox:2").Obj()
			tc.ask(tenant)
			super := MakePod(testSuperNS, "web").Owned("uid-web").Obj()
			h := newHarness(t, []object{super}, []object{tenant})
			refuse(h, sub)
			tried := []string{"update pods " + testSuperNS + "/web", "update pods/" + sub + " " + testSuperNS + "/web"}

			_, w, evs := h.syncRound(t)
			if diff := cmp.Diff(tried, w); diff != "" {
				t.Errorf("first round's super writes (-want +got):\n%s", diff)
			}
			sp, w, ev := h.syncRound(t)
			if diff := cmp.Diff([]string{"update pods " + testSuperNS + "/web"}, w); diff != "" {
				t.Errorf("second round's super writes (-want +got):\n%s", diff)
			}
			evs = append(evs, ev...)
			if img := sp.Spec.Containers[0].Image; img != "vnest.local/busybox:2" {
				t.Errorf("super pod image %q after two rounds; want the tenant's new one", img)
			}
			if len(evs) != 1 || !strings.Contains(evs[0], "SuperClusterRejected") {
				t.Errorf("events after two rounds = %q, want one SuperClusterRejected", evs)
			}
			if tc.check != nil {
				tp, err := h.tenantCS.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, tp)
			}

			restarted := newHarness(t, []object{sp}, []object{tenant})
			refuse(restarted, sub)
			if _, w, ev := restarted.syncRound(t); len(w) != 0 || len(ev) != 0 {
				t.Errorf("after a restart: super writes %q, events %q; want none", w, ev)
			}

			tc.askAgain(tenant)
			if err := h.t.index[kindPod].Update(tenant); err != nil {
				t.Fatal(err)
			}
			if _, w, ev := h.syncRound(t); !cmp.Equal(tried, w) || len(ev) != 1 {
				t.Errorf("asked anew: super writes %q, events %q; want %q and one event", w, ev, tried)
			}
		})
	}
}

// TestSyncPodRefusedTolerations: a down update the super cluster refuses for a toleration the
// tenant added goes again, in the same round, without it, so the pod's other changes (here: its
// new image) reach the super pod; the tenant is told once, and the super pod records the
// toleration, which is not tried again, also by a syncer restarted from it. A toleration the
// tenant adds later is tried, and goes down when the super cluster takes it.
func TestSyncPodRefusedTolerations(t *testing.T) {
	tol := func(key string) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	}
	refuseTolerations := func(h *harness) {
		h.super.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			p := a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
			if a.GetSubresource() != "" || !slices.ContainsFunc(p.Spec.Tolerations, func(x corev1.Toleration) bool { return x.Key == "gpu" }) {
				return false, nil, nil
			}
			return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", field.ErrorList{field.Forbidden(field.NewPath("spec", "tolerations"), "gpu is not for tenants")})
		})
	}
	tenant := MakePod("default", "web").Image("vnest.local/busybox:2").Obj()
	tenant.Spec.Tolerations = []corev1.Toleration{tol("gpu")}
	h := newHarness(t, []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj()}, []object{tenant})
	refuseTolerations(h)
	update := "update pods " + testSuperNS + "/web"

	sp, w, evs := h.syncRound(t)
	if diff := cmp.Diff([]string{update, update, update}, w); diff != "" {
		t.Errorf("first round's super writes (-want +got):\n%s", diff)
	}
	if img := sp.Spec.Containers[0].Image; img != "vnest.local/busybox:2" || len(sp.Spec.Tolerations) != 0 {
		t.Errorf("super pod image %q, tolerations %+v; want the tenant's new image and no tolerations", img, sp.Spec.Tolerations)
	}
	_, w, ev := h.syncRound(t)
	if len(w) != 0 {
		t.Errorf("second round's super writes %q, want none", w)
	}
	evs = append(evs, ev...)
	if len(evs) != 1 || !strings.Contains(evs[0], "SuperClusterRejected") || !strings.Contains(evs[0], "gpu:NoExecute") {
		t.Errorf("events after two rounds = %q, want one SuperClusterRejected naming gpu:NoExecute", evs)
	}

	restarted := newHarness(t, []object{sp}, []object{tenant})
	refuseTolerations(restarted)
	if _, w, ev := restarted.syncRound(t); len(w) != 0 || len(ev) != 0 {
		t.Errorf("after a restart: super writes %q, events %q; want none", w, ev)
	}

	tenant.Spec.Tolerations = append(tenant.Spec.Tolerations, tol("maintenance"))
	if err := h.t.index[kindPod].Update(tenant); err != nil {
		t.Fatal(err)
	}
	sp, w, ev = h.syncRound(t)
	if !cmp.Equal([]string{update}, w) || len(ev) != 0 {
		t.Errorf("a toleration added later: super writes %q, events %q; want %q and none", w, ev, update)
	}
	if diff := cmp.Diff([]corev1.Toleration{tol("maintenance")}, sp.Spec.Tolerations); diff != "" {
		t.Errorf("super pod's tolerations (-want +got):\n%s", diff)
	}
}
