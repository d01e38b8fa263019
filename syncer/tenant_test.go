package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
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
