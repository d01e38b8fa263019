package syncer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	api "k8s.io/kubernetes/pkg/apis/core"
	apiv1 "k8s.io/kubernetes/pkg/apis/core/v1"
	rcadmission "k8s.io/kubernetes/plugin/pkg/admission/runtimeclass"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/internal/ownership"
)

const testSuperRC = "demo-5c9a8459-test-handler"

// tenantRuntimeClass is the conformance tests' class, with overhead and scheduling when asked.
func tenantRuntimeClass(overhead bool) *nodev1.RuntimeClass {
	rc := &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "test-handler", UID: "uid-rc", Labels: map[string]string{"a": "b", ownership.LabelClusterKey: "forged"}},
		Handler:    "test-handler",
	}
	if overhead {
		rc.Overhead = &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("1Mi")}}
		rc.Scheduling = &nodev1.Scheduling{NodeSelector: map[string]string{"runtime": "gvisor"},
			Tolerations: []corev1.Toleration{{Key: "runtime", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}
	}
	return rc
}

// rcPod is a tenant pod naming the class, as the tenant's RuntimeClass admission leaves it.
func rcPod(rc *nodev1.RuntimeClass) *corev1.Pod {
	p := MakePod("default", "web").Obj()
	p.Spec.RuntimeClassName = ptr.To(rc.Name)
	if rc.Overhead != nil {
		p.Spec.Overhead = rc.Overhead.PodFixed.DeepCopy()
	}
	if rc.Scheduling != nil {
		p.Spec.NodeSelector = rc.Scheduling.NodeSelector
		p.Spec.Tolerations = rc.Scheduling.Tolerations
	}
	return p
}

func TestTranslateRuntimeClass(t *testing.T) {
	for name, overhead := range map[string]bool{"handler only": false, "overhead and scheduling": true} {
		t.Run(name, func(t *testing.T) {
			rc := tenantRuntimeClass(overhead)
			want := &nodev1.RuntimeClass{
				ObjectMeta: metav1.ObjectMeta{Name: testSuperRC,
					Labels: map[string]string{"a": "b", ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: ""},
					Annotations: map[string]string{ownership.AnnotationTenantUID: "uid-rc", ownership.AnnotationVirtualCluster: "default/demo",
						ownership.AnnotationTenantName: "test-handler"}},
				Handler:    "test-handler",
				Overhead:   rc.Overhead,
				Scheduling: rc.Scheduling,
			}
			if diff := cmp.Diff(want, translateRuntimeClass(rc, testOwner)); diff != "" {
				t.Errorf("translateRuntimeClass (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSuperPodRuntimeClassName: the super pod names the tenant's super class; the overhead the
// tenant's admission set stays.
func TestSuperPodRuntimeClassName(t *testing.T) {
	cases := map[string]struct {
		name, want *string
	}{
		"none":  {},
		"empty": {ptr.To(""), ptr.To("")},
		"named": {ptr.To("test-handler"), ptr.To(testSuperRC)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := rcPod(tenantRuntimeClass(true))
			p.Spec.RuntimeClassName = tc.name
			sp := translatePod(p, testOwner, defaultPolicy, nil)
			if diff := cmp.Diff(tc.want, sp.Spec.RuntimeClassName); diff != "" {
				t.Errorf("runtimeClassName (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(p.Spec.Overhead, sp.Spec.Overhead); diff != "" {
				t.Errorf("overhead (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSuperAdmissionAcceptsTheSuperPod runs the upstream RuntimeClass admission (mutating and
// validating, as the super apiserver does) on the super pod of a pod the tenant's admission
// prepared, with the super class: it is admitted and its overhead and scheduling stay as they
// are. The control case shows the admission does check: a pod whose overhead differs is refused.
func TestSuperAdmissionAcceptsTheSuperPod(t *testing.T) {
	for name, tc := range map[string]struct {
		overhead      bool
		mutate        func(*corev1.Pod)
		wantForbidden bool
	}{
		"without overhead":             {},
		"with overhead and scheduling": {overhead: true},
		"control: overhead differs": {overhead: true, wantForbidden: true,
			mutate: func(p *corev1.Pod) { p.Spec.Overhead[corev1.ResourceCPU] = resource.MustParse("20m") }},
	} {
		t.Run(name, func(t *testing.T) {
			rc := tenantRuntimeClass(tc.overhead)
			tp := rcPod(rc)
			if tc.mutate != nil {
				tc.mutate(tp)
			}
			sp := translatePod(tp, testOwner, defaultPolicy, nil)
			sp.Spec.NodeSelector, sp.Spec.Tolerations = tp.Spec.NodeSelector, tp.Spec.Tolerations
			src := translateRuntimeClass(rc, testOwner)

			cs := fake.NewClientset(src)
			f := informers.NewSharedInformerFactory(cs, 0)
			if err := f.Node().V1().RuntimeClasses().Informer().GetIndexer().Add(src); err != nil {
				t.Fatal(err)
			}
			plugin := rcadmission.NewRuntimeClass()
			plugin.SetExternalKubeClientSet(cs)
			plugin.SetExternalKubeInformerFactory(f)
			var pod api.Pod
			if err := apiv1.Convert_v1_Pod_To_core_Pod(sp, &pod, nil); err != nil {
				t.Fatal(err)
			}
			before := pod.DeepCopy()
			attrs := admission.NewAttributesRecord(&pod, nil, api.Kind("Pod").WithVersion("v1"), sp.Namespace, sp.Name,
				api.Resource("pods").WithVersion("v1"), "", admission.Create, &metav1.CreateOptions{}, false, nil)
			err := plugin.Admit(t.Context(), attrs, nil)
			if err == nil {
				err = plugin.Validate(t.Context(), attrs, nil)
			}
			if tc.wantForbidden {
				if err == nil || !strings.Contains(err.Error(), "Overhead") {
					t.Fatalf("admission = %v, want the overhead refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the super cluster's RuntimeClass admission refuses the super pod: %v", err)
			}
			if diff := cmp.Diff(before.Spec, pod.Spec); diff != "" {
				t.Errorf("the super admission changed the pod (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSyncRuntimeClass: a tenant class goes down under its per-tenant name, follows changes,
// is replaced when recreated and deleted when gone; a look-alike class of the same tenant whose
// name maps to the same super name does not take another's super class.
func TestSyncRuntimeClass(t *testing.T) {
	synced := translateRuntimeClass(tenantRuntimeClass(false), testOwner)
	cases := map[string]struct {
		super, tenant []object
		wantWrites    []string
		wantEvent     bool
	}{
		"created": {
			tenant: []object{tenantRuntimeClass(true)}, wantWrites: []string{"create runtimeclasses /" + testSuperRC},
		},
		"in sync": {super: []object{synced}, tenant: []object{tenantRuntimeClass(false)}},
		"overhead added": {
			super: []object{synced}, tenant: []object{tenantRuntimeClass(true)},
			wantWrites: []string{"update runtimeclasses /" + testSuperRC},
		},
		"orphan deleted": {super: []object{synced}, wantWrites: []string{"delete runtimeclasses /" + testSuperRC}},
		"recreated tenant class replaces the super class": {
			super: []object{synced}, tenant: []object{func() *nodev1.RuntimeClass {
				rc := tenantRuntimeClass(false)
				rc.UID = "uid-new"
				return rc
			}()},
			wantWrites: []string{"delete runtimeclasses /" + testSuperRC},
		},
		"another class of the tenant has the super name": {
			super: []object{func() *nodev1.RuntimeClass {
				rc := synced.DeepCopy()
				rc.Annotations[ownership.AnnotationTenantName] = "other"
				return rc
			}()},
			tenant: []object{tenantRuntimeClass(true)}, wantEvent: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			if err := h.s.syncRuntimeClass(testContext(t), h.t, "test-handler"); err != nil {
				t.Fatalf("syncRuntimeClass: %v", err)
			}
			if diff := cmp.Diff(tc.wantWrites, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			ev := events(h.recorder)
			if tc.wantEvent != (len(ev) == 1 && strings.Contains(ev[0], "SuperObjectNotOwned")) {
				t.Errorf("events = %q, want a SuperObjectNotOwned event: %v", ev, tc.wantEvent)
			}
		})
	}
	// The patrol and the super event handler find the tenant class from the annotation.
	if key, ok := superKey(kindRuntimeClass, synced, testKey); !ok || key != (objKey{Kind: kindRuntimeClass, Name: "test-handler"}) {
		t.Errorf("superKey = %v, %v", key, ok)
	}
}

// TestPodWithRuntimeClass: a pod naming a class goes down once its super class exists (synced
// on the way if need be), naming the super class; a pod whose class is missing in the tenant, or
// whose super class is not the tenant's, is refused with a condition and an event and nothing
// is created.
func TestPodWithRuntimeClass(t *testing.T) {
	superNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS,
		Labels: map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}}
	rc := tenantRuntimeClass(true)
	foreign := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: testSuperRC}, Handler: "kata"}
	cases := map[string]struct {
		super, tenant []object
		live          []object // in the super cluster, not in the cache
		wantWrites    []string
		wantRefusal   string
	}{
		"super class synced on the way": {
			super: []object{superNS}, tenant: []object{rc},
			wantWrites: []string{"create pods demo-5c9a8459-default/web", "create runtimeclasses /" + testSuperRC},
		},
		"super class already there": {
			super: []object{superNS, translateRuntimeClass(rc, testOwner)}, tenant: []object{rc},
			wantWrites: []string{"create pods demo-5c9a8459-default/web"},
		},
		"class deleted in the tenant": {
			super: []object{superNS}, wantRefusal: `RuntimeClass "test-handler" does not exist in this virtual cluster`,
		},
		"super class is someone else's": {
			super: []object{superNS}, tenant: []object{rc}, live: []object{foreign},
			wantWrites:  []string{"create runtimeclasses /" + testSuperRC},
			wantRefusal: "is not this virtual cluster's",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, append([]object{rcPod(rc)}, tc.tenant...))
			for _, o := range tc.live {
				if err := h.super.Tracker().Add(o); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatalf("syncPod: %v", err)
			}
			var got []string
			for _, w := range writes(h.super) {
				if !strings.Contains(w, "secrets") { // the pod's token Secret
					got = append(got, w)
				}
			}
			if diff := cmp.Diff(tc.wantWrites, got); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			if tc.wantRefusal == "" {
				sp, err := h.super.CoreV1().Pods(testSuperNS).Get(t.Context(), "web", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got := ptr.Deref(sp.Spec.RuntimeClassName, ""); got != testSuperRC {
					t.Errorf("super pod runtimeClassName = %q, want %q", got, testSuperRC)
				}
				return
			}
			tp, err := h.tenantCS.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var cond *corev1.PodCondition
			for i, c := range tp.Status.Conditions {
				if c.Type == corev1.PodScheduled {
					cond = &tp.Status.Conditions[i]
				}
			}
			if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != reasonRuntimeClass || !strings.Contains(cond.Message, tc.wantRefusal) {
				t.Errorf("PodScheduled condition = %+v, want False, %s, %q", cond, reasonRuntimeClass, tc.wantRefusal)
			}
			if ev := events(h.recorder); len(ev) == 0 || !strings.Contains(ev[len(ev)-1], reasonRuntimeClass) {
				t.Errorf("events = %q, want a %s event", ev, reasonRuntimeClass)
			}
		})
	}
}
