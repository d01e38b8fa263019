package syncer

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// TestForeignSuperObjectsAreNeverWritten: a super object with the name a tenant object maps to,
// but ownership that is not this tenant's (none, another tenant's, another tenant namespace's),
// is never created over, updated or deleted, and the tenant object gets an event. Each case
// differs from what the syncer would write, so without the ownership check (guard) the syncer
// would update or delete it and the test fails.
func TestForeignSuperObjectsAreNeverWritten(t *testing.T) {
	tenantPod := MakePod("default", "web").Label("app", "web").Obj()
	cases := map[string]struct {
		super     object
		tenant    []object
		wantEvent bool
	}{
		"unlabelled pod": {
			super:  MakePod(testSuperNS, "web").Obj(),
			tenant: []object{tenantPod}, wantEvent: true,
		},
		"another tenant's pod": {
			super: MakePod(testSuperNS, "web").Label(ownership.LabelClusterKey, "other-00000000").
				Label(ownership.LabelTenantNamespace, "default").Annotation(ownership.AnnotationTenantUID, "uid-web").Obj(),
			tenant: []object{tenantPod}, wantEvent: true,
		},
		"another tenant namespace's pod": {
			super: MakePod(testSuperNS, "web").Label(ownership.LabelClusterKey, testKey).
				Label(ownership.LabelTenantNamespace, "other").Annotation(ownership.AnnotationTenantUID, "uid-web").Obj(),
			tenant: []object{tenantPod}, wantEvent: true,
		},
		"foreign pod, tenant pod gone (would be an orphan)": {
			super: MakePod(testSuperNS, "web").Label(ownership.LabelClusterKey, "other-00000000").
				Label(ownership.LabelTenantNamespace, "default").Obj(),
		},
		"foreign pod, tenant pod terminating": {
			super:  MakePod(testSuperNS, "web").Label(ownership.LabelClusterKey, "other-00000000").Obj(),
			tenant: []object{MakePod("default", "web").Terminating(30).Obj()}, wantEvent: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{tc.super}, tc.tenant)
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatalf("syncPod: %v", err)
			}
			if got := writes(h.super); len(got) > 0 {
				t.Errorf("the syncer wrote a foreign super object: %v", got)
			}
			if got := writes(h.tenantCS); len(got) > 0 {
				t.Errorf("the syncer wrote the tenant: %v", got)
			}
			ev := events(h.recorder)
			if tc.wantEvent != (len(ev) == 1 && strings.Contains(ev[0], "is not owned by this tenant")) {
				t.Errorf("events = %q, want an event: %v", ev, tc.wantEvent)
			}
		})
	}
}

// TestForeignObjectInvisibleToTheCache: the super caches hold only labelled objects, so a
// foreign ConfigMap is found only when the create fails; it must not be updated after that.
func TestForeignObjectInvisibleToTheCache(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg", UID: "uid-cfg"}, Data: map[string]string{"a": "tenant"}}
	h := newHarness(t, []object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS, Labels: map[string]string{
		ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}}}, []object{cm})
	h.t.settings.Store(&settings{syncAll: true})
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "cfg"}, Data: map[string]string{"a": "super"}}
	if err := h.super.Tracker().Add(foreign); err != nil {
		t.Fatal(err)
	}
	if err := h.s.syncConfigMap(testContext(t), h.t, "default", "cfg"); err != nil {
		t.Fatalf("syncConfigMap: %v", err)
	}
	if diff := cmp.Diff([]string{"create configmaps demo-5c9a8459-default/cfg"}, writes(h.super)); diff != "" {
		t.Errorf("super writes (-want +got):\n%s", diff)
	}
	live, _ := h.super.CoreV1().ConfigMaps(testSuperNS).Get(t.Context(), "cfg", metav1.GetOptions{})
	if live.Data["a"] != "super" || len(live.Labels) != 0 {
		t.Errorf("foreign ConfigMap changed: %+v", live)
	}
	if ev := events(h.recorder); len(ev) != 1 {
		t.Errorf("events = %q, want one", ev)
	}
}

// TestOwnCreateNotYetInTheCache: a create that fails because the super object exists already,
// made from this very tenant object by an earlier reconcile the cache has not seen yet, is
// done (no error, so no retry); one made from an earlier tenant object of the same name is
// retried.
func TestOwnCreateNotYetInTheCache(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg", UID: "uid-cfg"}, Data: map[string]string{"a": "tenant"}}
	for name, tc := range map[string]struct {
		liveUID string
		wantErr bool
	}{
		"same tenant object":    {liveUID: "uid-cfg"},
		"earlier tenant object": {liveUID: "uid-old", wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS, Labels: map[string]string{
				ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}}}}, []object{cm})
			h.t.settings.Store(&settings{syncAll: true})
			live := &corev1.ConfigMap{ObjectMeta: mapping.SuperMeta(cm, testOwner), Data: cm.Data}
			live.Annotations[ownership.AnnotationTenantUID] = tc.liveUID
			if err := h.super.Tracker().Add(live); err != nil {
				t.Fatal(err)
			}
			if err := h.s.syncConfigMap(testContext(t), h.t, "default", "cfg"); (err != nil) != tc.wantErr {
				t.Errorf("syncConfigMap: %v, want an error: %v", err, tc.wantErr)
			}
			if diff := cmp.Diff([]string{"create configmaps demo-5c9a8459-default/cfg"}, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			if ev := events(h.recorder); len(ev) != 0 {
				t.Errorf("events = %q, want none", ev)
			}
		})
	}
}

// TestOwnedSuperObjectIsUpdated is the control: the same setup with the tenant's ownership is
// updated, so the cases above pass because of the ownership check, not because nothing writes.
func TestOwnedSuperObjectIsUpdated(t *testing.T) {
	super := MakePod(testSuperNS, "web").Owned("uid-web").Obj()
	h := newHarness(t, []object{super}, []object{MakePod("default", "web").Label("app", "web").Obj()})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatalf("syncPod: %v", err)
	}
	if diff := cmp.Diff([]string{"update pods demo-5c9a8459-default/web"}, writes(h.super)); diff != "" {
		t.Errorf("super writes (-want +got):\n%s", diff)
	}
}

// TestTwoTenantsSameNames: two tenants with the same namespace and pod name get separate super
// pods, and neither tenant's sync touches the other's.
func TestTwoTenantsSameNames(t *testing.T) {
	h := newHarness(t, nil, []object{MakePod("default", "web").Obj()})
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "demo"}}
	vc.Status.ClusterKey = "demo-0b0b0b0b"
	other := newTenant(vc, fake.NewClientset())
	other.wireInformers(informers.NewSharedInformerFactory(other.client, 0), h.s)
	if err := other.index[kindPod].Add(MakePod("default", "web").UID("uid-b").Obj()); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	for _, tn := range []*tenant{h.t, other} {
		if err := h.s.syncPod(ctx, tn, "default", "web"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"create pods demo-0b0b0b0b-default/web", "create pods demo-5c9a8459-default/web"}
	if diff := cmp.Diff(want, writes(h.super)); diff != "" {
		t.Errorf("super writes (-want +got):\n%s", diff)
	}
	// Tenant A's copy in the cache; B's sync of its own (missing in cache) pod must not see it.
	a, err := h.super.CoreV1().Pods("demo-5c9a8459-default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.superIndex[kindPod].Add(a); err != nil {
		t.Fatal(err)
	}
	h.super.ClearActions()
	if err := other.index[kindPod].Delete(MakePod("default", "web").Obj()); err != nil {
		t.Fatal(err)
	}
	if err := h.s.syncPod(ctx, other, "default", "web"); err != nil {
		t.Fatal(err)
	}
	if got := writes(h.super); len(got) > 0 {
		t.Errorf("tenant B's sync wrote %v", got)
	}
}

// TestNothingIsCreatedInAForeignSuperNamespace: a super namespace with the tenant namespace's
// name but not this tenant's labels (invisible to the cache, so the namespace's own sync only
// finds it when its create fails) gets none of the namespace's objects: the sync fails with
// errNotOwned, for a retry, and the tenant object gets an event.
func TestNothingIsCreatedInAForeignSuperNamespace(t *testing.T) {
	tenantNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns"}}
	for name, tc := range map[string]struct {
		tenant object
		sync   func(h *harness) error
	}{
		"service": {tenant: tenantService(nil), sync: func(h *harness) error {
			return h.s.syncService(testContext(t), h.t, "default", "web")
		}},
		"pod": {tenant: MakePod("default", "web").Obj(), sync: func(h *harness) error {
			return h.s.syncPod(testContext(t), h.t, "default", "web")
		}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil, []object{tenantNS, tc.tenant})
			if err := h.super.Tracker().Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS}}); err != nil {
				t.Fatal(err)
			}
			if err := tc.sync(h); !errors.Is(err, errNotOwned) {
				t.Fatalf("sync = %v, want errNotOwned", err)
			}
			// The namespace's create is refused as AlreadyExists; nothing else is written.
			if diff := cmp.Diff([]string{"create namespaces /" + testSuperNS}, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			ev := events(h.recorder)
			if len(ev) != 2 || !strings.Contains(ev[1], "SuperObjectNotOwned") || !strings.Contains(ev[1], testSuperNS) {
				t.Errorf("events = %q, want SuperObjectNotOwned on the namespace and on the object", ev)
			}
		})
	}
}

// TestNothingIsCreatedInAnotherTenantNamespacesSuperNamespace: two tenant namespaces can map to
// one super namespace (a tenant user names a namespace after the hash-truncated super name of a
// long one; a VirtualCluster named after another's key, whose name part is one letter, has that
// key as its prefix). The super namespace is then in the syncer's cache, labelled for the other
// tenant namespace: a pod of the second must not be created in it, where it could mount the
// first's Secrets by name, but fail with errNotOwned and an event, as in a foreign namespace.
func TestNothingIsCreatedInAnotherTenantNamespacesSuperNamespace(t *testing.T) {
	long := strings.Repeat("a", 63)
	truncated := mapping.SuperNamespace(testKey, long)
	prefixKey := testKey + "-0b0b0b0b"
	for name, tc := range map[string]struct {
		tenantNS string
		super    *corev1.Namespace
	}{
		"the tenant's own long namespace": {tenantNS: strings.TrimPrefix(truncated, testKey+"-"),
			super: &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&metav1.ObjectMeta{Name: long, UID: "uid-long"}, testOwner)}},
		"a tenant whose key starts with this one's": {tenantNS: "0b0b0b0b-default",
			super: &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&metav1.ObjectMeta{Name: "default", UID: "uid-b"}, mapping.Owner{ClusterKey: prefixKey})}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := mapping.SuperNamespace(testKey, tc.tenantNS); got != tc.super.Name {
				t.Fatalf("tenant namespace %q maps to %q, not to %q", tc.tenantNS, got, tc.super.Name)
			}
			tenantNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tc.tenantNS, UID: "uid-ns"}}
			h := newHarness(t, []object{tc.super}, []object{tenantNS, MakePod(tc.tenantNS, "web").Obj()})
			if err := h.s.syncPod(testContext(t), h.t, tc.tenantNS, "web"); !errors.Is(err, errNotOwned) {
				t.Fatalf("syncPod = %v, want errNotOwned", err)
			}
			if got := writes(h.super); len(got) > 0 {
				t.Errorf("super writes = %q, want none", got)
			}
			ev := events(h.recorder)
			if len(ev) != 1 || !strings.Contains(ev[0], "SuperObjectNotOwned") || !strings.Contains(ev[0], tc.super.Name) {
				t.Errorf("events = %q, want SuperObjectNotOwned naming the namespace", ev)
			}
		})
	}
}

// TestRejectionIsReported: when the super cluster refuses a pod (here: Pod Security), the
// tenant pod gets an event saying why, and the error is returned for a retry.
func TestRejectionIsReported(t *testing.T) {
	h := newHarness(t, []object{superDefaultNS.DeepCopy()}, []object{MakePod("default", "web").Obj()})
	h.super.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "web", errors.New(`violates PodSecurity "baseline:latest"`))
	})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); !apierrors.IsForbidden(err) {
		t.Fatalf("syncPod = %v, want the Forbidden error back", err)
	}
	ev := events(h.recorder)
	if len(ev) != 1 || !strings.Contains(ev[0], "SuperClusterRejected") || !strings.Contains(ev[0], "PodSecurity") {
		t.Errorf("events = %q, want one SuperClusterRejected event naming the reason", ev)
	}
}

// TestForeignSlicesAndRuntimeClassesAreNeverWritten: as TestForeignSuperObjectsAreNeverWritten,
// for EndpointSlices and for RuntimeClasses, which are cluster-scoped: a super class with the
// tenant's per-tenant name is the tenant's only with its cluster key and an empty
// tenant-namespace label; one stamped for a tenant namespace (as a namespaced object would be)
// does not pass.
func TestForeignSlicesAndRuntimeClassesAreNeverWritten(t *testing.T) {
	slice := MakeSlice("default", "custom").Service("web").ManagedBy("e2e-test")
	rc := tenantRuntimeClass(true)
	foreignRC := func(labels map[string]string) object {
		return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: testSuperRC, Labels: labels,
			Annotations: map[string]string{ownership.AnnotationTenantName: "test-handler", ownership.AnnotationTenantUID: "uid-rc"}}, Handler: "runc"}
	}
	otherTenant := map[string]string{ownership.LabelClusterKey: "other-00000000", ownership.LabelTenantNamespace: ""}
	cases := map[string]struct {
		super     object
		tenant    []object
		wantEvent bool
	}{
		"unlabelled slice": {
			super: MakeSlice(testSuperNS, "custom").Service("web").Obj(), tenant: []object{slice.Obj()}, wantEvent: true,
		},
		"another tenant's slice": {
			super: MakeSlice(testSuperNS, "custom").Label(ownership.LabelClusterKey, "other-00000000").
				Label(ownership.LabelTenantNamespace, "default").Obj(),
			tenant: []object{slice.Obj()}, wantEvent: true,
		},
		"another tenant namespace's slice, tenant slice gone": {
			super: MakeSlice(testSuperNS, "custom").Label(ownership.LabelClusterKey, testKey).Label(ownership.LabelTenantNamespace, "other").Obj(),
		},
		"unlabelled RuntimeClass": {super: foreignRC(nil), tenant: []object{rc}, wantEvent: true},
		"another tenant's RuntimeClass": {
			super: foreignRC(otherTenant), tenant: []object{rc}, wantEvent: true,
		},
		"RuntimeClass stamped for a tenant namespace": {
			super:  foreignRC(map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}),
			tenant: []object{rc}, wantEvent: true,
		},
		"another tenant's RuntimeClass, tenant class gone (would be an orphan)": {super: foreignRC(otherTenant)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{tc.super}, tc.tenant)
			ctx := testContext(t)
			var err error
			if _, ok := tc.super.(*nodev1.RuntimeClass); ok {
				err = h.s.syncRuntimeClass(ctx, h.t, "test-handler")
			} else {
				err = h.s.syncEndpointSlice(ctx, h.t, "default", "custom")
			}
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if got := writes(h.super); len(got) > 0 {
				t.Errorf("the syncer wrote a foreign super object: %v", got)
			}
			ev := events(h.recorder)
			if tc.wantEvent != (len(ev) == 1 && strings.Contains(ev[0], "is not owned by this tenant")) {
				t.Errorf("events = %q, want an event: %v", ev, tc.wantEvent)
			}
		})
	}
}
