package syncer

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// TestTenantPodWritesReadBack: syncs that come before the tenant cache shows the syncer's own
// writes neither bind the pod again nor write its status again; once podWriteTTL has passed
// without the cache showing the binding, a sync binds again.
func TestTenantPodWritesReadBack(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	superNS := &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner)}
	running := MakePod(testSuperNS, "web").Owned("uid-web").Node("node-1").Phase(corev1.PodRunning).HostIP("192.0.2.2").Obj()
	unbound := MakePod("default", "web").Obj()
	unbound.ResourceVersion = "1"
	h := newHarness(t, []object{superNS, node, running}, []object{unbound, virtualNode(node, nil, metav1.Unix(0, 0))})
	rv := 10 // the fake tenant keeps no resourceVersions of its own
	h.tenantCS.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		rv++
		a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod).ResourceVersion = strconv.Itoa(rv)
		return false, nil, nil
	})
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	h.s.now = func() time.Time { return now }
	ctx := testContext(t)
	sync := func(want ...string) {
		t.Helper()
		h.tenantCS.ClearActions()
		if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, writes(h.tenantCS)); diff != "" {
			t.Errorf("tenant writes (-want +got):\n%s", diff)
		}
	}
	sync("create pods/binding default/web")
	sync() // the cache still shows the pod unbound
	now = now.Add(podWriteTTL)
	sync("create pods/binding default/web") // the binding never showed: bound again

	bound := unbound.DeepCopy()
	bound.Spec.NodeName, bound.ResourceVersion = "node-1", "2"
	if err := h.t.index[kindPod].Update(bound); err != nil {
		t.Fatal(err)
	}
	sync("update pods/status default/web")
	// The cache still has the status before the write, also after an unrelated event.
	sync()
	if err := h.t.index[kindPod].Update(bound); err != nil {
		t.Fatal(err)
	}
	sync()
}

// TestPodWritesFreedOnCatchUp: the syncer's own copy of a pod, kept without managed fields, is
// dropped as soon as the pod informer's event brings one as new, not when it expires.
func TestPodWritesFreedOnCatchUp(t *testing.T) {
	cached := MakePod("default", "web").Obj()
	cached.ResourceVersion = "1"
	h := newHarness(t, nil, []object{cached})
	written := cached.DeepCopy()
	written.ResourceVersion, written.Status.Phase = "5", corev1.PodRunning
	written.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "vnest-syncer"}}
	h.t.podWrites.statuses.wrote(written)
	got, _, _ := h.t.podWrites.statuses.get("default", "web")
	if got.ResourceVersion != "5" || got.ManagedFields != nil {
		t.Fatalf("read back resourceVersion %s with %d managed fields, want 5 and none", got.ResourceVersion, len(got.ManagedFields))
	}

	seen := written.DeepCopy()
	if err := h.t.index[kindPod].Update(seen); err != nil { // the informer's store, then its event
		t.Fatal(err)
	}
	h.t.handler(h.s, kindPod).OnUpdate(cached, seen)
	// Put an older copy back into the store: only a dropped entry lets it through.
	if err := h.t.index[kindPod].Update(cached); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := h.t.podWrites.statuses.get("default", "web"); got.ResourceVersion != "1" {
		t.Errorf("read resourceVersion %s after the informer caught up, want the store's 1: the own copy was kept", got.ResourceVersion)
	}
}
