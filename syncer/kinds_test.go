package syncer

import (
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

func TestTranslateNamespace(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns", Labels: map[string]string{"team": "a"}}}
	cases := map[string]struct {
		policy v1alpha1.PolicySpec
		level  string
	}{
		"default level is baseline": {level: "baseline"},
		"policy level":              {policy: v1alpha1.PolicySpec{PodSecurityLevel: v1alpha1.PodSecurityRestricted}, level: "restricted"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
				Name: testSuperNS,
				Labels: map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default",
					labelPodSecurityEnforce: tc.level},
				Annotations: map[string]string{ownership.AnnotationTenantUID: "uid-ns", ownership.AnnotationVirtualCluster: "default/demo"},
			}}
			if diff := cmp.Diff(want, translateNamespace(ns, testOwner, tc.policy)); diff != "" {
				t.Errorf("translateNamespace (-want +got):\n%s", diff)
			}
		})
	}
	// The super cluster labels every namespace with its name; that is not drift.
	desired := translateNamespace(ns, testOwner, v1alpha1.PolicySpec{})
	existing := desired.DeepCopy()
	existing.Labels["kubernetes.io/metadata.name"] = testSuperNS
	if !namespaceDown.equal(desired, existing) {
		t.Error("the super cluster's own namespace label counts as drift")
	}
	if merged := namespaceDown.merge(desired, existing); merged.Labels["kubernetes.io/metadata.name"] != testSuperNS {
		t.Error("merge dropped the super cluster's own label")
	}
}

// TestFirstObjectCreatesTheSuperNamespace: the first object of a tenant namespace creates the
// super namespace and then itself, with no read of the namespace it has just created.
func TestFirstObjectCreatesTheSuperNamespace(t *testing.T) {
	h := newHarness(t, nil, []object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns"}}, tenantService(nil)})
	if err := h.s.syncService(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range h.super.Actions() {
		got = append(got, a.GetVerb()+" "+a.GetResource().Resource)
	}
	if diff := cmp.Diff([]string{"create namespaces", "create services"}, got); diff != "" {
		t.Errorf("super actions (-want +got):\n%s", diff)
	}
}

func TestTranslateConfigMapSecretEndpoints(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web", Labels: map[string]string{ownership.LabelTenantNamespace: "forged"}}
	cm := &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"a": "b"}, BinaryData: map[string][]byte{"c": {1}}}
	if diff := cmp.Diff(&corev1.ConfigMap{ObjectMeta: stampedMeta, Data: cm.Data, BinaryData: cm.BinaryData}, translateConfigMap(cm, testOwner)); diff != "" {
		t.Errorf("translateConfigMap (-want +got):\n%s", diff)
	}
	sec := &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": []byte("v")}}
	if diff := cmp.Diff(&corev1.Secret{ObjectMeta: stampedMeta, Type: corev1.SecretTypeOpaque, Data: sec.Data}, translateSecret(sec, testOwner)); diff != "" {
		t.Errorf("translateSecret (-want +got):\n%s", diff)
	}
	ep := &corev1.Endpoints{ObjectMeta: meta, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}, {IP: "192.0.2.2",
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-0", UID: "uid-web-0", ResourceVersion: "7"}}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.0.2.3",
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", UID: "uid-web-1"}}},
	}}}
	// The targets name the super pods: in the super namespace, without the tenant's UIDs.
	wantSubsets := []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}, {IP: "192.0.2.2",
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: testSuperNS, Name: "web-0"}}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.0.2.3",
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: testSuperNS, Name: "web-1"}}},
	}}
	if diff := cmp.Diff(&corev1.Endpoints{ObjectMeta: stampedMeta, Subsets: wantSubsets}, translateEndpoints(ep, testOwner)); diff != "" {
		t.Errorf("translateEndpoints (-want +got):\n%s", diff)
	}
	if ep.Subsets[0].Addresses[1].TargetRef.Namespace != "default" {
		t.Error("translateEndpoints changed the tenant object")
	}
}

// TestScopedSecretsAndConfigMaps: with Used, only what a pod uses goes down; with All,
// everything but service-account tokens and kube-root-ca.crt.
func TestScopedSecretsAndConfigMaps(t *testing.T) {
	user := MakePod("default", "user").Obj()
	user.Spec.Volumes = []corev1.Volume{{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "used"}}}}}
	cm := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)}}
	}
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tok"}, Type: corev1.SecretTypeServiceAccountToken}
	plain := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plain"}}
	superNS := superDefaultNS.DeepCopy()
	cases := map[string]struct {
		all  bool
		want []string
	}{
		"Used": {want: []string{"create configmaps demo-5c9a8459-default/used"}},
		"All": {all: true, want: []string{"create configmaps demo-5c9a8459-default/unused", "create configmaps demo-5c9a8459-default/used",
			"create secrets demo-5c9a8459-default/plain"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{superNS}, []object{user, cm("used"), cm("unused"), cm(rootCAConfigMap), token, plain})
			h.t.settings.Store(&settings{syncAll: tc.all})
			ctx := testContext(t)
			for _, n := range []string{"used", "unused", rootCAConfigMap} {
				if err := h.s.syncConfigMap(ctx, h.t, "default", n); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range []string{"tok", "plain"} {
				if err := h.s.syncSecret(ctx, h.t, "default", n); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEndpointsOfSelectorServicesAreLeftAlone: the super endpoints controller copies the
// Service's labels (ownership included) to its Endpoints; the syncer must not fight it.
func TestEndpointsOfSelectorServicesAreLeftAlone(t *testing.T) {
	superSvc := translateService(tenantService(nil), testOwner)
	controllerEps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web", Labels: superSvc.Labels}}
	h := newHarness(t, []object{superSvc, controllerEps}, []object{tenantService(nil)})
	if err := h.s.syncEndpoints(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	if got := writes(h.super); len(got) > 0 {
		t.Errorf("super writes: %v", got)
	}
}

// TestEndpointsLeftByTheControllerAreTakenOver: when a Service loses its selector, the super
// endpoints controller leaves its Endpoints (copied ownership labels, no tenant UID) with the old
// addresses; the tenant's hand-made Endpoints are written over them, in place. Endpoints whose
// ownership labels are not this tenant namespace's are never touched, nor are the controller's
// while the tenant Service still has a selector.
func TestEndpointsLeftByTheControllerAreTakenOver(t *testing.T) {
	noSelector := func(s *corev1.Service) { s.Spec.Selector = nil }
	superSvc := translateService(tenantService(noSelector), testOwner)
	leftBy := func(labels map[string]string) *corev1.Endpoints {
		labels = maps.Clone(labels)
		labels["endpoints.kubernetes.io/managed-by"] = "endpoint-controller"
		return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web", UID: "super-ep", Labels: labels},
			Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.9"}}}}}
	}
	otherNS := map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "other"}
	tenantEps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-ep"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}}}}}
	cases := map[string]struct {
		super     *corev1.Endpoints
		tenantSvc *corev1.Service
		want      []string
	}{
		"left by the controller: taken over": {super: leftBy(superSvc.Labels), tenantSvc: tenantService(noSelector),
			want: []string{"update endpoints " + testSuperNS + "/web"}},
		"another tenant namespace's: untouched":               {super: leftBy(otherNS), tenantSvc: tenantService(noSelector)},
		"the tenant Service has a selector: the controller's": {super: leftBy(superSvc.Labels), tenantSvc: tenantService(nil)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{superSvc, tc.super}, []object{tc.tenantSvc, tenantEps})
			if err := h.s.syncEndpoints(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, writes(h.super)); diff != "" {
				t.Fatalf("super writes (-want +got):\n%s", diff)
			}
			if tc.want == nil {
				return
			}
			live, err := h.super.CoreV1().Endpoints(testSuperNS).Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(translateEndpoints(tenantEps, testOwner), live, cmpopts.IgnoreFields(metav1.ObjectMeta{}, "UID")); diff != "" {
				t.Errorf("super Endpoints (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEndpointsTakeOverWhenTheSelectorGoes: the tenant Service loses its selector and both its
// keys are queued; the Endpoints sync comes first, while the cached super Service still has the
// selector, and leaves the super Endpoints to the controller. The super Service's update event,
// once the Service sync wrote it, queues the Endpoints again: the takeover needs no patrol.
func TestEndpointsTakeOverWhenTheSelectorGoes(t *testing.T) {
	superSvc := translateService(tenantService(nil), testOwner)
	labels := maps.Clone(superSvc.Labels)
	labels["endpoints.kubernetes.io/managed-by"] = "endpoint-controller"
	leftBy := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web", UID: "super-ep", Labels: labels},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.244.0.9"}}}}}
	tenantEps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-ep"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}}}}}
	h := newHarness(t, []object{superSvc, leftBy}, []object{tenantService(func(s *corev1.Service) { s.Spec.Selector = nil }), tenantEps})
	ctx := testContext(t)
	sync := func(key objKey) {
		t.Helper()
		if err := h.s.reconcile(ctx, h.t, key); err != nil {
			t.Fatalf("sync %v: %v", key, err)
		}
	}
	sync(objKey{Kind: kindEndpoints, Namespace: "default", Name: "web"})
	if got := writes(h.super); len(got) > 0 {
		t.Fatalf("Endpoints sync while the cached super Service has a selector: super writes %v, want none", got)
	}
	sync(objKey{Kind: kindService, Namespace: "default", Name: "web"})
	written, err := h.super.CoreV1().Services(testSuperNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || len(written.Spec.Selector) > 0 {
		t.Fatalf("super Service after the Service sync: %v, %v; want it without selector", written, err)
	}
	if err := h.s.superIndex[kindService].Update(written); err != nil {
		t.Fatal(err)
	}
	h.s.superHandler(kindService).OnUpdate(superSvc, written) // the informer's event
	for h.s.queue.Len(testKey) > 0 {
		k, _ := h.s.queue.Get()
		sync(k.Item)
		h.s.queue.Done(k.Tenant, k.Item)
	}
	live, err := h.super.CoreV1().Endpoints(testSuperNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tenantEps.Subsets, live.Subsets); diff != "" {
		t.Errorf("super Endpoints after the super Service's update event, without a patrol (-want +got):\n%s", diff)
	}
}

func TestVirtualNode(t *testing.T) {
	hb := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	old := metav1.NewTime(hb.Add(-time.Hour))
	super := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "super-uid", Labels: map[string]string{"kubernetes.io/hostname": "node-1"},
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			Capacity:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: old}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.36.3"},
			Images:     []corev1.ContainerImage{{Names: []string{"busybox"}}},
		},
	}
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/hostname": "node-1", ownership.LabelVirtualNode: "true"}},
		Spec:       corev1.NodeSpec{Taints: super.Spec.Taints},
		Status: corev1.NodeStatus{
			Addresses:  super.Status.Addresses,
			Capacity:   super.Status.Capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: hb}},
			NodeInfo:   super.Status.NodeInfo,
		},
	}
	got := virtualNode(super, nil, hb)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("virtualNode (-want +got):\n%s", diff)
	}
	if !nodeStatusEqual(got.Status, virtualNode(super, nil, old).Status) {
		t.Error("a heartbeat alone counts as a status change")
	}
}

func TestSyncNodeRemovesUnused(t *testing.T) {
	super := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	virtual := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "v", Labels: map[string]string{ownership.LabelVirtualNode: "true"}}}
	own := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2"}}
	h := newHarness(t, []object{super}, []object{virtual, own})
	ctx := testContext(t)
	for _, n := range []string{"node-1", "node-2"} {
		if err := h.s.syncNode(ctx, h.t, n); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"delete nodes /node-1"}, writes(h.tenantCS)); diff != "" {
		t.Errorf("tenant writes (-want +got):\n%s", diff)
	}
}

// TestSyncNodeForPinnedPod: a pod the tenant put on a cordoned node waits pinned to it in the
// super cluster, bound to it in the tenant; the tenant gets the virtual Node meanwhile, else its
// pod garbage collector would delete the pod as bound to a node that does not exist.
func TestSyncNodeForPinnedPod(t *testing.T) {
	tenantNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns"}}
	cordoned := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Spec: corev1.NodeSpec{Unschedulable: true}}
	h := newHarness(t, []object{translateNamespace(tenantNS, testOwner, defaultPolicy), cordoned},
		[]object{tenantNS, MakePod("default", "web").Node("node-1").Obj()})
	ctx := testContext(t)
	sp := h.syncWebDown(t)
	if sp.Spec.NodeName != "" {
		t.Fatalf("super pod nodeName %q, want it pinned, not placed", sp.Spec.NodeName)
	}
	if err := h.s.superIndex[kindPod].Add(sp); err != nil {
		t.Fatal(err)
	}
	if err := h.s.syncNode(ctx, h.t, "node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.tenantCS.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{}); err != nil {
		t.Errorf("no virtual Node for the node the pod is pinned to: %v", err)
	}
}
