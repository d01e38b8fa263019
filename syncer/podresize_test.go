package syncer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// resources is requests cpu/memory and, when given, limits (cpu, memory); "" leaves one out.
func resources(cpu, mem string, limits ...string) corev1.ResourceRequirements {
	list := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	r := corev1.ResourceRequirements{Requests: list(cpu, mem)}
	if len(limits) == 2 {
		r.Limits = list(limits[0], limits[1])
	}
	return r
}

// resizable is a pod with containers c1 and c2 and a sidecar (restartable init container).
func resizable(ns string, c1, c2, sidecar corev1.ResourceRequirements) *corev1.Pod {
	p := MakePod(ns, "web").Obj()
	p.Spec.Containers = []corev1.Container{
		{Name: "c1", Image: "vnest.local/busybox:1", Resources: c1},
		{Name: "c2", Image: "vnest.local/busybox:1", Resources: c2},
	}
	p.Spec.InitContainers = []corev1.Container{{Name: "sidecar", Image: "vnest.local/busybox:1", Resources: sidecar,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
	return p
}

func TestResizedPod(t *testing.T) {
	small, big := resources("20m", "35Mi"), resources("25m", "40Mi")
	super := resizable(testSuperNS, small, small, small)
	super.Spec.NodeName = "node-1"
	cases := map[string]struct {
		tenant *corev1.Pod
		want   func(*corev1.Pod) // applied to a copy of super; nil: no resize
	}{
		"same resources: nothing to resize": {tenant: resizable("default", small, small, small)},
		"equivalent quantities are the same": {
			tenant: resizable("default", resources("0.02", "36700160"), small, small),
		},
		"one container grows": {
			tenant: resizable("default", small, big, small),
			want:   func(p *corev1.Pod) { p.Spec.Containers[1].Resources = big },
		},
		"limits added": {
			tenant: resizable("default", resources("20m", "35Mi", "30m", ""), small, small),
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources = resources("20m", "35Mi", "30m", "")
			},
		},
		"sidecar shrinks": {
			tenant: resizable("default", small, small, resources("15m", "30Mi")),
			want:   func(p *corev1.Pod) { p.Spec.InitContainers[0].Resources = resources("15m", "30Mi") },
		},
		"resize policy changes": {
			tenant: func() *corev1.Pod {
				p := resizable("default", small, small, small)
				p.Spec.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
				return p
			}(),
			want: func(p *corev1.Pod) {
				p.Spec.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
			},
		},
		"pod-level resources change": {
			tenant: func() *corev1.Pod {
				p := resizable("default", small, small, small)
				p.Spec.Resources = ptr.To(resources("100m", "100Mi"))
				return p
			}(),
			want: func(p *corev1.Pod) { p.Spec.Resources = ptr.To(resources("100m", "100Mi")) },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := super.DeepCopy()
			got := resizedPod(super, tc.tenant)
			var want *corev1.Pod
			if tc.want != nil {
				want = super.DeepCopy()
				tc.want(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("resizedPod (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, super); diff != "" {
				t.Errorf("resizedPod changed the super pod (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSyncPodResize: a tenant resize goes down alone through the super pods/resize
// subresource; the tenant generation is stamped by the down update of the next round, once the
// super pod has the new resources.
func TestSyncPodResize(t *testing.T) {
	small, big := resources("20m", "35Mi"), resources("25m", "40Mi")
	tenant := resizable("default", big, small, small)
	tenant.Generation = 2
	super := func(c1 corev1.ResourceRequirements) *corev1.Pod {
		p := (&podWrapper{*resizable(testSuperNS, c1, small, small)}).Owned("uid-web").Annotation(annotationTenantGeneration, "1").Obj()
		p.Generation = 1
		return p
	}

	h := newHarness(t, []object{super(small)}, []object{tenant})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatalf("syncPod: %v", err)
	}
	if diff := cmp.Diff([]string{"update pods/resize demo-5c9a8459-default/web"}, writes(h.super)); diff != "" {
		t.Fatalf("super writes (-want +got):\n%s", diff)
	}
	sent := h.super.Actions()[0].(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
	if diff := cmp.Diff(big, sent.Spec.Containers[0].Resources); diff != "" {
		t.Errorf("resized c1 (-want +got):\n%s", diff)
	}
	if got := sent.Annotations[annotationTenantGeneration]; got != "1" {
		t.Errorf("the resize carries tenant generation %q, want the old 1", got)
	}

	h = newHarness(t, []object{super(big)}, []object{tenant})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatalf("syncPod after the resize: %v", err)
	}
	if diff := cmp.Diff([]string{"update pods demo-5c9a8459-default/web"}, writes(h.super)); diff != "" {
		t.Fatalf("super writes after the resize (-want +got):\n%s", diff)
	}
	sent = h.super.Actions()[0].(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
	if got := sent.Annotations[annotationTenantGeneration]; got != "2" {
		t.Errorf("the down update stamps tenant generation %q, want 2", got)
	}
}

// TestResizeWithinQuota: a resize that grows a pod must fit the tenant's quota as a new pod
// must; a shrink always goes through.
func TestResizeWithinQuota(t *testing.T) {
	cpu := func(req, lim string) corev1.ResourceRequirements {
		if lim == "" {
			return resources(req, "")
		}
		return resources(req, "", lim, "")
	}
	pod := func(ns, name, uid string, r corev1.ResourceRequirements) *corev1.Pod {
		w := MakePod(ns, name).UID(uid)
		if ns == testSuperNS {
			w.Owned(uid)
		}
		p := w.Obj()
		p.Spec.Containers[0].Resources = r
		return p
	}
	hard := func(name corev1.ResourceName, q string) corev1.ResourceList {
		return corev1.ResourceList{name: resource.MustParse(q)}
	}
	cases := map[string]struct {
		quota         corev1.ResourceList
		super, tenant corev1.ResourceRequirements
		other         corev1.ResourceRequirements // another pod of the tenant
		wantResize    bool
	}{
		"grows within the quota": {
			quota: hard(corev1.ResourceRequestsCPU, "100m"), other: cpu("60m", ""),
			super: cpu("20m", ""), tenant: cpu("25m", ""), wantResize: true,
		},
		"grows over the quota": {
			quota: hard(corev1.ResourceRequestsCPU, "100m"), other: cpu("60m", ""),
			super: cpu("20m", ""), tenant: cpu("50m", ""),
		},
		"shrinks while over a lowered quota": {
			quota: hard(corev1.ResourceRequestsCPU, "50m"), other: cpu("60m", ""),
			super: cpu("20m", ""), tenant: cpu("15m", ""), wantResize: true,
		},
		"a limit added counts as growth": {
			quota: hard(corev1.ResourceLimitsCPU, "100m"), other: cpu("60m", "80m"),
			super: cpu("20m", ""), tenant: cpu("20m", "30m"),
		},
		"no quota": {
			other: cpu("60m", ""), super: cpu("20m", ""), tenant: cpu("500m", ""), wantResize: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t,
				[]object{pod(testSuperNS, "web", "uid-web", tc.super), pod(testSuperNS, "other", "uid-other", tc.other)},
				[]object{pod("default", "web", "uid-web", tc.tenant)})
			h.t.settings.Store(&settings{policy: v1alpha1.PolicySpec{Quota: tc.quota}})
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatalf("syncPod: %v", err)
			}
			var want []string
			if tc.wantResize {
				want = []string{"update pods/resize demo-5c9a8459-default/web"}
			}
			if diff := cmp.Diff(want, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			ev := events(h.recorder)
			if tc.wantResize == (len(ev) == 1 && strings.Contains(ev[0], v1alpha1.PodReasonQuotaExceeded)) {
				t.Errorf("events = %q", ev)
			}
		})
	}
}

func TestRefusedResizeStatus(t *testing.T) {
	small, big := resources("20m", "35Mi"), resources("25m", "40Mi")
	before, now := metav1.Unix(100, 0), metav1.Unix(200, 0)
	super := MakePod(testSuperNS, "web").Obj()
	super.Spec.Containers[0].Resources = small
	tenant := func(r corev1.ResourceRequirements, conds ...corev1.PodCondition) *corev1.Pod {
		p := MakePod("default", "web").Obj()
		p.Generation, p.Spec.Containers[0].Resources, p.Status.Conditions = 3, r, conds
		return p
	}
	refusedBy := func(tp *corev1.Pod) *corev1.Pod {
		return withAnnotation(super, annotationRefusedResize, resizeRequest(super, resizedPod(super, tp))+" LimitRange says no")
	}
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	deferred := corev1.PodCondition{Type: corev1.PodResizePending, Status: corev1.ConditionTrue, Reason: corev1.PodReasonDeferred}
	infeasible := func(at metav1.Time) corev1.PodCondition {
		return corev1.PodCondition{Type: corev1.PodResizePending, Status: corev1.ConditionTrue, ObservedGeneration: 3, LastTransitionTime: at,
			Reason: corev1.PodReasonInfeasible, Message: "The super cluster refused the resize: LimitRange says no"}
	}
	cases := map[string]struct {
		super, tenant *corev1.Pod
		conditions    []corev1.PodCondition // of the status going up
		want          []corev1.PodCondition
	}{
		"nothing refused": {
			super: super, tenant: tenant(big), conditions: []corev1.PodCondition{ready}, want: []corev1.PodCondition{ready},
		},
		"the tenant's request refused: Infeasible": {
			super: refusedBy(tenant(big)), tenant: tenant(big), conditions: []corev1.PodCondition{ready},
			want: []corev1.PodCondition{ready, infeasible(now)},
		},
		"the super kubelet's word on an older resize gives way": {
			super: refusedBy(tenant(big)), tenant: tenant(big), conditions: []corev1.PodCondition{deferred, ready},
			want: []corev1.PodCondition{ready, infeasible(now)},
		},
		"due for retry: Infeasible until the retry goes through": {
			super: withAnnotation(super, annotationRefusedResize, refusal{requests: []string{retryMark + resizeRequest(super, resizedPod(super, tenant(big)))},
				at: before.Time, msg: "LimitRange says no"}.String()),
			tenant: tenant(big), conditions: []corev1.PodCondition{ready},
			want: []corev1.PodCondition{ready, infeasible(now)},
		},
		"said before: its transition time stays": {
			super: refusedBy(tenant(big)), tenant: tenant(big, infeasible(before)), conditions: []corev1.PodCondition{ready},
			want: []corev1.PodCondition{ready, infeasible(before)},
		},
		"another request since": {
			super: refusedBy(tenant(big)), tenant: tenant(resources("30m", "40Mi")), conditions: []corev1.PodCondition{ready},
			want: []corev1.PodCondition{ready},
		},
		"the tenant went back to the super pod's resources": {
			super: refusedBy(tenant(big)), tenant: tenant(small), conditions: []corev1.PodCondition{ready},
			want: []corev1.PodCondition{ready},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := corev1.PodStatus{Conditions: tc.conditions}
			before := st.DeepCopy()
			got := refusedResizeStatus(st, tc.super, tc.tenant, now)
			if diff := cmp.Diff(tc.want, got.Conditions); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before.Conditions, st.Conditions); diff != "" {
				t.Errorf("refusedResizeStatus changed its input (-before +after):\n%s", diff)
			}
		})
	}
}
