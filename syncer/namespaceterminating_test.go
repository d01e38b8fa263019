package syncer

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// namespaceTerminatingError is the super cluster's answer to a create in a namespace being
// deleted, as the namespace lifecycle admission plugin words it.
func namespaceTerminatingError(resource, name string) error {
	err := apierrors.NewForbidden(corev1.Resource(resource), name,
		fmt.Errorf("unable to create new content in namespace %s because it is being terminated", testSuperNS))
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: corev1.NamespaceTerminatingCause, Message: "namespace " + testSuperNS + " is being terminated", Field: "metadata.namespace",
	})
	return err
}

// terminatingTenantNS is tenant namespace "default" being deleted.
func terminatingTenantNS() *corev1.Namespace {
	now := metav1.Now()
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns", DeletionTimestamp: &now, Finalizers: []string{"kubernetes"}}}
}

// TestNothingCreatedInATerminatingNamespace: the objects left in a tenant namespace being
// deleted (the syncer deletes its super namespace then) get no super object, no event and no
// status, where the super cluster would refuse each create and the tenant would be told of a
// refusal on an object about to go (seen in a conformance run: 722 SuperClusterRejected events
// about a namespace's Services, each then refused by the gone namespace, each an error line);
// nor is a pod whose super pod went with the super namespace failed as lost.
func TestNothingCreatedInATerminatingNamespace(t *testing.T) {
	privileged := MakePod("default", "web").Obj() // refused by the tenant's policy (baseline)
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	syncPod := func(h *harness) error { return h.s.syncPod(testContext(t), h.t, "default", "web") }
	for name, tc := range map[string]struct {
		obj  object
		sync func(h *harness) error
	}{
		"pod":                             {MakePod("default", "web").Obj(), syncPod},
		"pod the tenant's policy refuses": {privileged, syncPod},
		// Its super pod went with the super namespace: not lost to the super cluster (a
		// DisruptionTarget of DeletionBySuperCluster); the tenant's namespace controller deletes it.
		"pod whose super pod went with the namespace": {MakePod("default", "web").Node("n1").HostIP("192.0.2.1").Phase(corev1.PodRunning).Obj(), syncPod},
		"service": {tenantService(nil), func(h *harness) error { return h.s.syncService(testContext(t), h.t, "default", "web") }},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{superDefaultNS.DeepCopy()}, []object{terminatingTenantNS(), tc.obj})
			if err := tc.sync(h); err != nil {
				t.Errorf("sync = %v, want nil", err)
			}
			if got := writes(h.super); len(got) > 0 {
				t.Errorf("super writes = %q, want none", got)
			}
			if got := writes(h.tenantCS); len(got) > 0 {
				t.Errorf("tenant writes = %q, want none", got)
			}
			if ev := events(h.recorder); len(ev) > 0 {
				t.Errorf("events = %q, want none", ev)
			}
		})
	}
}

// TestTerminatingSuperNamespaceIsNoRefusal: a create the super cluster refuses because the super
// namespace is being deleted (a tenant namespace deleted and made again under its name, while
// the old super namespace goes) is retried, and neither marks the tenant pod refused nor tells
// the tenant of a SuperClusterRejected: the pod runs once the old namespace is gone.
func TestTerminatingSuperNamespaceIsNoRefusal(t *testing.T) {
	h := newHarness(t, []object{superDefaultNS.DeepCopy()}, []object{MakePod("default", "web").Obj()})
	h.super.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, namespaceTerminatingError("pods", "web")
	})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		t.Fatalf("syncPod = %v, want the NamespaceTerminating error back, for a retry", err)
	}
	if got := writes(h.tenantCS); len(got) > 0 {
		t.Errorf("tenant writes = %q, want none (the pod is not refused)", got)
	}
	if ev := events(h.recorder); len(ev) > 0 {
		t.Errorf("events = %q, want none", ev)
	}
	if !worthTelling(errors.Join(namespaceTerminatingError("pods", "web"), nil)) {
		t.Error("a create refused for a terminating namespace is not told when it lasts, want it told as a sync error")
	}
}

// TestWaitingKeysRetriedWithTheirSuperNamespace: once the super namespace of a tenant namespace
// is created, the keys of that namespace waiting for a retry are queued at once. A tenant
// namespace deleted and made again under its name gets its super namespace only when the old
// one is gone, and its objects' creates, refused until then, back off up to a minute apart.
func TestWaitingKeysRetriedWithTheirSuperNamespace(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns-2"}}
	h := newHarness(t, nil, []object{ns, MakePod("default", "web").Obj(), MakePod("default", "fresh").Obj(), MakePod("other", "web").Obj()})
	waiting := []objKey{{Kind: kindPod, Namespace: "default", Name: "web"}, {Kind: kindPod, Namespace: "other", Name: "web"}}
	for _, key := range waiting {
		for range 10 { // a back-off of seconds
			h.s.queue.AddRateLimited(testKey, key)
		}
	}
	if got := h.s.queue.Len(testKey); got != 0 {
		t.Fatalf("queued before = %d, want 0", got)
	}
	created, err := h.s.syncNamespace(testContext(t), h.t, "default")
	if err != nil || !created {
		t.Fatalf("syncNamespace = %v, %v; want the super namespace created", created, err)
	}
	got := map[objKey]bool{}
	for h.s.queue.Len(testKey) > 0 {
		key, _ := h.s.queue.Get()
		got[key.Item] = true
		h.s.queue.Done(key.Tenant, key.Item)
	}
	want := map[objKey]bool{waiting[0]: true} // not the key without a back-off, nor another namespace's
	if !maps.Equal(got, want) {
		t.Errorf("queued at once = %v, want %v", got, want)
	}
}
