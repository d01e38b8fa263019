package syncer

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vnest-dev/vnest/api/v1alpha1"
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
// tenant adds later is tried, and goes down when the super cluster takes it. So it goes for a
// validating webhook's refusal and for PodTolerationRestriction's, which comes as a 500.
func TestSyncPodRefusedTolerations(t *testing.T) {
	for name, refusal := range map[string]error{
		"invalid":                  apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", field.ErrorList{field.Forbidden(field.NewPath("spec", "tolerations"), "gpu is not for tenants")}),
		"PodTolerationRestriction": tolerationsRefusal("namespace"), // down_test.go
	} {
		t.Run(name, func(t *testing.T) { testSyncPodRefusedTolerations(t, refusal) })
	}
}

func testSyncPodRefusedTolerations(t *testing.T, refusal error) {
	tol := func(key string) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	}
	refuseTolerations := func(h *harness) {
		h.super.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			p := a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
			if a.GetSubresource() != "" || !slices.ContainsFunc(p.Spec.Tolerations, func(x corev1.Toleration) bool { return x.Key == "gpu" }) {
				return false, nil, nil
			}
			return true, nil, refusal
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

// refusedAt is when the records of withRecord were refused.
var refusedAt = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// withRecord returns a copy of super pod sp recording requests in annotation k, refused at
// refusedAt under the default policy, with no message.
func withRecord(sp *corev1.Pod, k string, requests ...string) *corev1.Pod {
	return withAnnotation(sp, k, refusal{requests: requests, at: refusedAt, cause: refusalHash(defaultPolicy)}.String())
}

// TestParseRefusal: a record reads back as written, and an older syncer's (requests and message
// only) as refused at no known time, under no known cause.
func TestParseRefusal(t *testing.T) {
	cases := map[string]struct {
		v    string
		want refusal
	}{
		"none": {v: ""},
		"written": {
			v:    "a,~b 2025-06-01T10:00:00Z 0123456789abcdef pods \"web\" is forbidden: no",
			want: refusal{requests: []string{"a", "~b"}, at: refusedAt, cause: "0123456789abcdef", msg: `pods "web" is forbidden: no`},
		},
		"no message, no cause": {
			v:    "a 2025-06-01T10:00:00Z -",
			want: refusal{requests: []string{"a"}, at: refusedAt},
		},
		"an older syncer's, with a message": {
			v:    "0123456789abcdef LimitRange says no",
			want: refusal{requests: []string{"0123456789abcdef"}, msg: "LimitRange says no"},
		},
		"an older syncer's, names only": {
			v:    "debugger,debugger2",
			want: refusal{requests: []string{"debugger", "debugger2"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := parseRefusal(tc.v)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(refusal{})); diff != "" {
				t.Errorf("parseRefusal(%q) (-want +got):\n%s", tc.v, diff)
			}
			if tc.want.at.IsZero() {
				return
			}
			if again := parseRefusal(got.String()); !cmp.Equal(got, again, cmp.AllowUnexported(refusal{})) {
				t.Errorf("parseRefusal(%q) = %+v, want %+v", got.String(), again, got)
			}
		})
	}
}

// TestRefusalDue: a record is due for retry, all its requests, once refusalRetryPeriod passed or
// the policy changed (a cause known and other than the record's); not before, and not for a
// cause not known yet (the namespace has not the policy's Pod Security level).
func TestRefusalDue(t *testing.T) {
	rec := refusal{requests: []string{"a", "b"}, at: refusedAt, cause: "p1", msg: "no"}
	marked := refusal{requests: []string{"~a", "~b"}, at: refusedAt, cause: "p1", msg: "no"}
	cases := map[string]struct {
		r          refusal
		cause      string
		causeKnown bool
		after      time.Duration
		want       refusal
		wantDue    bool
	}{
		"just refused":                        {r: rec, cause: "p1", causeKnown: true, after: time.Second, want: rec},
		"within the period":                   {r: rec, cause: "p1", causeKnown: true, after: refusalRetryPeriod - time.Second, want: rec},
		"the period passed":                   {r: rec, cause: "p1", causeKnown: true, after: refusalRetryPeriod, want: marked, wantDue: true},
		"the policy changed":                  {r: rec, cause: "p2", causeKnown: true, after: time.Second, want: marked, wantDue: true},
		"the policy changed, not applied yet": {r: rec, causeKnown: false, after: time.Second, want: rec},
		"an older syncer's record":            {r: refusal{requests: []string{"a"}, msg: "no"}, cause: "p1", causeKnown: true, want: refusal{requests: []string{"~a"}, msg: "no"}, wantDue: true},
		"refused under a cause not known":     {r: refusal{requests: []string{"a"}, at: refusedAt}, cause: "p1", causeKnown: true, after: time.Second, want: refusal{requests: []string{"~a"}, at: refusedAt}, wantDue: true},
		"marked already":                      {r: marked, cause: "p2", causeKnown: true, after: time.Second, want: marked},
		"one of two marked":                   {r: refusal{requests: []string{"a", "~b"}, at: refusedAt, cause: "p1"}, cause: "p2", causeKnown: true, want: refusal{requests: []string{"~a", "~b"}, at: refusedAt, cause: "p1"}, wantDue: true},
		"no record":                           {cause: "p2", causeKnown: true, after: refusalRetryPeriod},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, due := refusalDue(tc.r, tc.cause, tc.causeKnown, refusedAt.Add(tc.after))
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(refusal{})); diff != "" || due != tc.wantDue {
				t.Errorf("refusalDue: due %v, want %v; record (-want +got):\n%s", due, tc.wantDue, diff)
			}
		})
	}
}

// TestRefusedAgain: a refusal is recorded now, beside the requests recorded before that keep; the
// tenant is told of a request not recorded before, and of a retry refused again only when the
// policy changed since the refusal it repeats.
func TestRefusedAgain(t *testing.T) {
	now := refusedAt.Add(time.Hour)
	all := func(string) bool { return true }
	cases := map[string]struct {
		old      refusal
		requests []string
		keep     func(string) bool
		cause    string
		want     refusal
		wantTell bool
	}{
		"the first refusal": {
			requests: []string{"a"}, keep: all, cause: "p1",
			want: refusal{requests: []string{"a"}, at: now, cause: "p1", msg: "no"}, wantTell: true,
		},
		"another request": {
			old: refusal{requests: []string{"a"}, at: refusedAt, cause: "p1", msg: "old"}, requests: []string{"b"}, keep: all, cause: "p1",
			want: refusal{requests: []string{"a", "b"}, at: now, cause: "p1", msg: "no"}, wantTell: true,
		},
		"a retry refused again, the period passed": {
			old: refusal{requests: []string{"~a"}, at: refusedAt, cause: "p1", msg: "old"}, requests: []string{"a"}, keep: all, cause: "p1",
			want: refusal{requests: []string{"a"}, at: now, cause: "p1", msg: "no"},
		},
		"a retry refused again, the policy changed": {
			old: refusal{requests: []string{"~a"}, at: refusedAt, cause: "p1", msg: "old"}, requests: []string{"a"}, keep: all, cause: "p2",
			want: refusal{requests: []string{"a"}, at: now, cause: "p2", msg: "no"}, wantTell: true,
		},
		"a retry of an older syncer's record refused again": {
			old: refusal{requests: []string{"~a"}, msg: "old"}, requests: []string{"a"}, keep: all, cause: "p2",
			want: refusal{requests: []string{"a"}, at: now, cause: "p2", msg: "no"},
		},
		"refused while the policy is not applied yet": {
			old: refusal{requests: []string{"~a"}, at: refusedAt, cause: "p1"}, requests: []string{"a"}, keep: all,
			want: refusal{requests: []string{"a"}, at: now, msg: "no"},
		},
		"another still due for retry stays so": {
			old: refusal{requests: []string{"~a", "~b"}, at: refusedAt, cause: "p1"}, requests: []string{"a"}, keep: all, cause: "p1",
			want: refusal{requests: []string{"~b", "a"}, at: now, cause: "p1", msg: "no"},
		},
		"those that need no record go": {
			old: refusal{requests: []string{"~a", "~b", "c"}, at: refusedAt, cause: "p1"}, requests: []string{"c"},
			keep: func(req string) bool { return req != "a" }, cause: "p1",
			want: refusal{requests: []string{"~b", "c"}, at: now, cause: "p1", msg: "no"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, tell := refusedAgain(tc.old, tc.requests, tc.keep, now, tc.cause, "no")
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(refusal{})); diff != "" || tell != tc.wantTell {
				t.Errorf("refusedAgain: tell %v, want %v; record (-want +got):\n%s", tell, tc.wantTell, diff)
			}
		})
	}
}

// TestSyncPodRefusalRetried: a recorded refusal of a resize or an ephemeral container stands
// until refusalRetryPeriod passed, then is tried once more; refused again, it is recorded anew
// without another event. A change of the policy has it tried at once, once the super namespace
// has the policy's Pod Security level, with one event if refused again. A retry that goes
// through is written, and a resize's PodResizePending=Infeasible leaves the tenant pod.
func TestSyncPodRefusalRetried(t *testing.T) {
	for _, sub := range []string{"ephemeralcontainers", "resize"} {
		t.Run(sub, func(t *testing.T) {
			tenant := MakePod("default", "web").Obj()
			switch sub {
			case "resize":
				tenant.Spec.Containers[0].Resources = resources("25m", "40Mi")
			default:
				tenant.Spec.EphemeralContainers = []corev1.EphemeralContainer{ephemeral("debugger")}
			}
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS, Labels: map[string]string{labelPodSecurityEnforce: "baseline"}}}
			h := newHarness(t, []object{ns, MakePod(testSuperNS, "web").Owned("uid-web").Obj()}, []object{tenant})
			clock := refusedAt
			h.s.now = func() time.Time { return clock }
			refusing := true
			h.super.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != sub || !refusing {
					return false, nil, nil
				}
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web", errors.New("violates PodSecurity"))
			})
			tried := []string{"update pods " + testSuperNS + "/web", "update pods/" + sub + " " + testSuperNS + "/web"}
			round := func(what string, wantWrites []string, wantEvents int) *corev1.Pod {
				t.Helper()
				sp, w, ev := h.syncRound(t)
				if !cmp.Equal(wantWrites, w, cmpopts.EquateEmpty()) || len(ev) != wantEvents {
					t.Errorf("%s: super writes %q, events %q; want %q and %d events", what, w, ev, wantWrites, wantEvents)
				}
				tp, err := h.tenantCS.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if err := h.t.index[kindPod].Update(tp); err != nil { // as its event would
					t.Fatal(err)
				}
				return sp
			}

			round("refused", tried, 1)
			clock = clock.Add(time.Minute)
			round("a minute later", nil, 0) // brings the status up
			clock = clock.Add(refusalRetryPeriod)
			round("the period passed: tried again and refused again", tried, 0)
			round("right after", nil, 0)

			h.t.settings.Store(&settings{policy: v1alpha1.PolicySpec{PodSecurityLevel: v1alpha1.PodSecurityPrivileged}})
			round("the policy changed, the namespace not yet", nil, 0)
			ns.Labels[labelPodSecurityEnforce] = "privileged"
			if err := h.s.superIndex[kindNamespace].Update(ns); err != nil {
				t.Fatal(err)
			}
			round("the policy applied: tried again, refused again, told", tried, 1)
			round("right after the policy's retry", nil, 0)
			resizePending := func() bool {
				tp, err := h.tenantCS.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return slices.ContainsFunc(tp.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodResizePending })
			}
			if sub == "resize" && !resizePending() {
				t.Fatal("no PodResizePending on the tenant pod while the resize is refused")
			}

			refusing = false
			clock = clock.Add(refusalRetryPeriod)
			round("the period passed, the super cluster takes it", []string{"update pods/" + sub + " " + testSuperNS + "/web"}, 0)
			sp := round("after it went through", nil, 0)
			if sub == "resize" {
				if got := sp.Spec.Containers[0].Resources; !cmp.Equal(got, resources("25m", "40Mi")) {
					t.Errorf("super pod resources %+v after the retry; want the tenant's", got)
				}
				if resizePending() {
					t.Error("tenant pod still PodResizePending after the retry went through")
				}
			} else if len(sp.Spec.EphemeralContainers) != 1 {
				t.Errorf("super pod's ephemeral containers %+v after the retry; want the tenant's", sp.Spec.EphemeralContainers)
			}
		})
	}
}

// TestSyncPodRefusedTolerationsRetried: recorded tolerations go down again once
// refusalRetryPeriod passed: refused again, the update goes without them as the first time and
// they are recorded anew without another event; taken, they reach the super pod.
func TestSyncPodRefusedTolerationsRetried(t *testing.T) {
	gpu := corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	tenant := MakePod("default", "web").Obj()
	tenant.Spec.Tolerations = []corev1.Toleration{gpu}
	h := newHarness(t, []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj()}, []object{tenant})
	clock := refusedAt
	h.s.now = func() time.Time { return clock }
	refusing := true
	h.super.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
		if !refusing || a.GetSubresource() != "" || !slices.ContainsFunc(p.Spec.Tolerations, func(x corev1.Toleration) bool { return x.Key == "gpu" }) {
			return false, nil, nil
		}
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", field.ErrorList{field.Forbidden(field.NewPath("spec", "tolerations"), "gpu is not for tenants")})
	})
	update := "update pods " + testSuperNS + "/web"
	round := func(what string, wantWrites []string, wantEvents int) *corev1.Pod {
		t.Helper()
		sp, w, ev := h.syncRound(t)
		if !cmp.Equal(wantWrites, w, cmpopts.EquateEmpty()) || len(ev) != wantEvents {
			t.Errorf("%s: super writes %q, events %q; want %q and %d events", what, w, ev, wantWrites, wantEvents)
		}
		return sp
	}

	round("refused", []string{update, update, update}, 1)
	clock = clock.Add(refusalRetryPeriod - time.Second)
	round("within the period", nil, 0)
	clock = clock.Add(time.Second)
	round("the period passed: tried again and refused again", []string{update, update, update}, 0)
	round("right after", nil, 0)

	refusing = false
	clock = clock.Add(refusalRetryPeriod)
	round("the period passed, the super cluster takes them", []string{update}, 0)
	if sp := round("after they went through", nil, 0); !slices.ContainsFunc(sp.Spec.Tolerations, func(x corev1.Toleration) bool { return x.Key == "gpu" }) {
		t.Errorf("super pod tolerations %+v after the retry; want gpu", sp.Spec.Tolerations)
	}
}
