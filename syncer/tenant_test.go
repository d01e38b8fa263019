package syncer

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TestNewTenantObjectsGoFirst: a tenant pod created while the tenant has updates queued (another
// pod's status, a super pod's change) is synced first, and so is the Secret it uses; the
// updates keep their order behind them.
func TestNewTenantObjectsGoFirst(t *testing.T) {
	h := newHarness(t, nil, nil)
	pods := h.t.handler(h.s, kindPod)
	old := MakePod("default", "old").Obj()
	pods.OnUpdate(old, old)
	h.s.superHandler(kindPod).OnUpdate(nil, MakePod(testSuperNS, "older").Owned("uid-older").Obj())
	created := MakePod("default", "new").Obj()
	created.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}}}
	pods.OnAdd(created, false)

	var got []string
	for h.s.queue.Len(testKey) > 0 {
		k, _ := h.s.queue.Get()
		got = append(got, string(k.Item.Kind)+" "+k.Item.Name)
		h.s.queue.Done(k.Tenant, k.Item)
	}
	want := []string{"Pod new", "Secret creds", "Pod old", "Pod older"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order of syncs (-want +got):\n%s", diff)
	}
}

// TestDeletionsGoFirst: the start of a tenant pod's deletion and a tenant object gone go before
// the tenant's queued updates; a deleting pod's further updates do not.
func TestDeletionsGoFirst(t *testing.T) {
	h := newHarness(t, nil, nil)
	pods := h.t.handler(h.s, kindPod)
	changed := MakePod("default", "changed").Obj()
	pods.OnUpdate(changed, changed)
	deleting := MakePod("default", "deleting").Obj()
	deleted := deleting.DeepCopy()
	deleted.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	pods.OnUpdate(deleting, deleted)
	pods.OnUpdate(deleted, deleted) // still deleting: a plain update
	pods.OnDelete(cache.DeletedFinalStateUnknown{Key: "default/gone", Obj: MakePod("default", "gone").Obj()})
	pods.OnUpdate(MakePod("default", "later").Obj(), MakePod("default", "later").Obj())

	var got []string
	for h.s.queue.Len(testKey) > 0 {
		k, _ := h.s.queue.Get()
		got = append(got, k.Item.Name)
		h.s.queue.Done(k.Tenant, k.Item)
	}
	// "deleting" was queued urgent first; its second update finds it queued already.
	want := []string{"deleting", "gone", "changed", "later"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order of syncs (-want +got):\n%s", diff)
	}
}
