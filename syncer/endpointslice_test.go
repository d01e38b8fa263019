package syncer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// sliceWrapper is a fluent builder of test EndpointSlices: MakeSlice(ns, name).Service("web").Obj().
type sliceWrapper struct{ discoveryv1.EndpointSlice }

func MakeSlice(ns, name string) *sliceWrapper {
	return &sliceWrapper{discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("port80"), Port: ptr.To[int32](8090), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}}
}

func (w *sliceWrapper) Obj() *discoveryv1.EndpointSlice { return w.EndpointSlice.DeepCopy() }
func (w *sliceWrapper) Label(k, v string) *sliceWrapper {
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	w.Labels[k] = v
	return w
}
func (w *sliceWrapper) Service(name string) *sliceWrapper {
	return w.Label(discoveryv1.LabelServiceName, name)
}
func (w *sliceWrapper) ManagedBy(m string) *sliceWrapper {
	return w.Label(discoveryv1.LabelManagedBy, m)
}
func (w *sliceWrapper) Address(ip string) *sliceWrapper {
	w.Endpoints[0].Addresses = []string{ip}
	return w
}

// Owned stamps the slice as the super slice of tenant slice tenantUID in tenant namespace "default".
func (w *sliceWrapper) Owned(tenantUID string) *sliceWrapper {
	w.Label(ownership.LabelClusterKey, testKey).Label(ownership.LabelTenantNamespace, "default")
	w.Annotations = map[string]string{ownership.AnnotationTenantUID: tenantUID, ownership.AnnotationVirtualCluster: "default/demo"}
	return w
}

func TestTranslateEndpointSlice(t *testing.T) {
	withRef := func(ref *corev1.ObjectReference) *discoveryv1.EndpointSlice {
		es := MakeSlice("default", "custom").Service("web").ManagedBy("e2e-test").Label(ownership.LabelClusterKey, "forged").Obj()
		es.Endpoints[0].TargetRef = ref
		es.Endpoints[0].NodeName = ptr.To("node-1")
		return es
	}
	cases := map[string]struct {
		ref, wantRef *corev1.ObjectReference
	}{
		"no target reference": {},
		"pod reference gets the super namespace, not the tenant UID": {
			ref:     &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "server", UID: "tenant-pod-uid", ResourceVersion: "7"},
			wantRef: &corev1.ObjectReference{Kind: "Pod", Namespace: testSuperNS, Name: "server"},
		},
		"reference into another tenant namespace stays in the tenant": {
			ref:     &corev1.ObjectReference{Kind: "Pod", Namespace: "other", Name: "server"},
			wantRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "demo-5c9a8459-other", Name: "server"},
		},
		"reference without namespace": {
			ref:     &corev1.ObjectReference{Kind: "Pod", Name: "server"},
			wantRef: &corev1.ObjectReference{Kind: "Pod", Name: "server"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := withRef(tc.ref)
			want := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: testSuperNS, Name: "custom",
					Labels: map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "e2e-test",
						ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"},
					Annotations: map[string]string{ownership.AnnotationTenantUID: "uid-custom", ownership.AnnotationVirtualCluster: "default/demo"},
				},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
					NodeName: ptr.To("node-1"), TargetRef: tc.wantRef}},
				Ports: in.Ports,
			}
			if diff := cmp.Diff(want, translateEndpointSlice(in, testOwner)); diff != "" {
				t.Errorf("translateEndpointSlice (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(withRef(tc.ref), in); diff != "" {
				t.Errorf("the tenant slice changed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandMadeSlice(t *testing.T) {
	cases := map[string]struct {
		es   *discoveryv1.EndpointSlice
		want bool
	}{
		"by hand, with a manager of its own": {MakeSlice("default", "s").Service("web").ManagedBy("e2e-test").Obj(), true},
		"by hand, no manager":                {MakeSlice("default", "s").Service("web").Obj(), true},
		// The tenant apiserver's own slice of default/kubernetes has no manager label, and its
		// Endpoints carry endpointslice.kubernetes.io/skip-mirror, so the super mirroring
		// controller makes none from the synced Endpoints: this slice is the only one.
		"the tenant apiserver's kubernetes slice": {MakeSlice("default", "kubernetes").Service("kubernetes").Obj(), true},
		"no Service":                     {MakeSlice("default", "s").ManagedBy("e2e-test").Obj(), false},
		"the endpointslice controller's": {MakeSlice("default", "s").Service("web").ManagedBy(managedByEndpointSliceController).Obj(), false},
		"the mirroring controller's":     {MakeSlice("default", "s").Service("web").ManagedBy(managedByMirroringController).Obj(), false},
	}
	for name, tc := range cases {
		if got := handMadeSlice(tc.es); got != tc.want {
			t.Errorf("%s: handMadeSlice = %v, want %v", name, got, tc.want)
		}
	}
}

// TestSyncEndpointSlice: hand-made tenant slices go down, change and go; the controllers'
// slices never do, on either side, even when the super cluster's copied the ownership labels.
func TestSyncEndpointSlice(t *testing.T) {
	superNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS,
		Labels: map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}}
	handMade := MakeSlice("default", "custom").Service("web").ManagedBy("e2e-test")
	// What the super mirroring controller makes from synced Endpoints: their labels (ownership
	// included) and annotations (the tenant UID of the Endpoints) copied.
	mirrored := MakeSlice(testSuperNS, "custom").Service("web").Owned("uid-web").ManagedBy(managedByMirroringController)
	cases := map[string]struct {
		super, tenant []object
		wantWrites    []string
		wantEvent     bool
	}{
		"hand-made slice is created": {
			super: []object{superNS}, tenant: []object{handMade.Obj()},
			wantWrites: []string{"create endpointslices demo-5c9a8459-default/custom"},
		},
		"synced slice is left as it is": {
			super:  []object{superNS, translateEndpointSlice(handMade.Obj(), testOwner)},
			tenant: []object{handMade.Obj()},
		},
		"changed addresses are updated": {
			super:      []object{superNS, translateEndpointSlice(handMade.Obj(), testOwner)},
			tenant:     []object{MakeSlice("default", "custom").Service("web").ManagedBy("e2e-test").Address("10.244.0.9").Obj()},
			wantWrites: []string{"update endpointslices demo-5c9a8459-default/custom"},
		},
		"orphan is deleted": {
			super:      []object{superNS, translateEndpointSlice(handMade.Obj(), testOwner)},
			wantWrites: []string{"delete endpointslices demo-5c9a8459-default/custom"},
		},
		"a slice that stops naming a Service is deleted": {
			super:      []object{superNS, translateEndpointSlice(handMade.Obj(), testOwner)},
			tenant:     []object{MakeSlice("default", "custom").ManagedBy("e2e-test").Obj()},
			wantWrites: []string{"delete endpointslices demo-5c9a8459-default/custom"},
		},
		"tenant endpointslice controller's slice is not synced": {
			super: []object{superNS}, tenant: []object{MakeSlice("default", "custom").Service("web").ManagedBy(managedByEndpointSliceController).Obj()},
		},
		"tenant mirroring controller's slice is not synced (the super one mirrors the synced Endpoints)": {
			super: []object{superNS}, tenant: []object{MakeSlice("default", "custom").Service("web").ManagedBy(managedByMirroringController).Obj()},
		},
		"super mirrored slice without tenant slice is not an orphan": {
			super: []object{superNS, mirrored.Obj()},
		},
		"super controller slice with copied Service labels is not an orphan": {
			super: []object{superNS, MakeSlice(testSuperNS, "custom").Service("web").Owned("").ManagedBy(managedByEndpointSliceController).Obj()},
		},
		"super mirrored slice with a hand-made slice's name is left alone": {
			super: []object{superNS, mirrored.Obj()}, tenant: []object{handMade.Obj()}, wantEvent: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			if err := h.s.syncEndpointSlice(testContext(t), h.t, "default", "custom"); err != nil {
				t.Fatalf("syncEndpointSlice: %v", err)
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
}

// TestSelectorlessServiceWithEndpointsAndSlices: a selector-less Service with hand-made
// Endpoints (mirrored into a slice by the tenant's controller) and a hand-made slice gets, in
// the super cluster, the Endpoints (which the super mirroring controller mirrors) and the
// hand-made slice; the tenant's mirrored slice does not go down a second time.
func TestSelectorlessServiceWithEndpointsAndSlices(t *testing.T) {
	superNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS,
		Labels: map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}}
	svc := tenantService(nil)
	svc.Spec.Selector = nil
	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-eps"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.5"}}, Ports: []corev1.EndpointPort{{Port: 80}}}}}
	tenantMirrored := MakeSlice("default", "web-abcde").Service("web").ManagedBy(managedByMirroringController).Address("10.244.0.5").Obj()
	h := newHarness(t, []object{superNS}, []object{svc, eps, tenantMirrored, MakeSlice("default", "custom").Service("web").ManagedBy("me").Obj()})
	ctx := testContext(t)
	if err := h.s.syncEndpoints(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-abcde", "custom"} {
		if err := h.s.syncEndpointSlice(ctx, h.t, "default", name); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"create endpoints demo-5c9a8459-default/web", "create endpointslices demo-5c9a8459-default/custom"}
	if diff := cmp.Diff(want, writes(h.super)); diff != "" {
		t.Errorf("super writes (-want +got):\n%s", diff)
	}
}

// TestPatrolSkipsControllerSlices: super slices of the upstream controllers carry the
// ownership labels they copied; the patrol neither queues them nor counts them as drift.
func TestPatrolSkipsControllerSlices(t *testing.T) {
	owned := MakeSlice(testSuperNS, "custom").Service("web").Owned("uid-custom").Obj()
	for name, tc := range map[string]struct {
		obj    *discoveryv1.EndpointSlice
		wantOK bool
	}{
		"synced slice":               {owned, true},
		"endpointslice controller's": {MakeSlice(testSuperNS, "web-x").Service("web").Owned("").ManagedBy(managedByEndpointSliceController).Obj(), false},
		"mirroring controller's":     {MakeSlice(testSuperNS, "web-y").Service("web").Owned("uid-web").ManagedBy(managedByMirroringController).Obj(), false},
	} {
		key, ok := superKey(kindEndpointSlice, tc.obj, testKey)
		if ok != tc.wantOK {
			t.Errorf("%s: superKey = %v, %v; want ok %v", name, key, ok, tc.wantOK)
		}
	}
	if key, _ := superKey(kindEndpointSlice, owned, testKey); key != (objKey{Kind: kindEndpointSlice, Namespace: "default", Name: "custom"}) {
		t.Errorf("superKey = %v", key)
	}
}
