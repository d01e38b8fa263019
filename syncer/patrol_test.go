package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// TestPatrol: every key on either side is queued; an orphan super pod and a tenant pod without
// super pod count as drift, and so does a token Secret whose pod is gone, but not one whose pod
// is there.
func TestPatrol(t *testing.T) {
	tenantNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns"}}
	superNS := translateNamespace(tenantNS, testOwner, defaultPolicy)
	token := func(pod string) *corev1.Secret {
		m := mapping.SuperMeta(MakePod("default", pod).Obj(), testOwner)
		m.Name = tokenSecretName(pod)
		m.Labels[labelPodToken] = pod
		m.Annotations[annotationPodToken] = pod
		return &corev1.Secret{ObjectMeta: m}
	}
	h := newHarness(t,
		[]object{superNS, MakePod(testSuperNS, "orphan").Owned("uid-orphan").Obj(), MakePod(testSuperNS, "synced").Owned("uid-synced").Obj(),
			token("synced"), token("orphan")},
		[]object{tenantNS, MakePod("default", "synced").Obj(), MakePod("default", "new").Obj()})
	h.s.patrol(testContext(t), h.t)

	var got []objKey
	for h.s.queue.Len(testKey) > 0 {
		k, _ := h.s.queue.Get()
		got = append(got, k.Item)
		h.s.queue.Done(k.Tenant, k.Item)
	}
	want := []objKey{
		{Kind: kindNamespace, Name: "default"},
		{Kind: kindPod, Namespace: "default", Name: "new"},
		{Kind: kindPod, Namespace: "default", Name: "orphan"},
		{Kind: kindPod, Namespace: "default", Name: "synced"},
	}
	less := func(a, b objKey) bool { return a.Kind+kind(a.Name) < b.Kind+kind(b.Name) }
	if diff := cmp.Diff(want, got, cmpSortKeys(less)); diff != "" {
		t.Errorf("queued keys (-want +got):\n%s", diff)
	}
	if d := testutil.ToFloat64(h.s.metrics.drift.WithLabelValues(testKey, string(kindPod))); d != 2 {
		t.Errorf("pod drift = %v, want 2 (one orphan, one missing)", d)
	}
	if d := testutil.ToFloat64(h.s.metrics.drift.WithLabelValues(testKey, string(kindNamespace))); d != 0 {
		t.Errorf("namespace drift = %v, want 0", d)
	}
	if d := testutil.ToFloat64(h.s.metrics.drift.WithLabelValues(testKey, string(kindSecret))); d != 1 {
		t.Errorf("secret drift = %v, want 1 (the orphan pod's token Secret)", d)
	}
}

// TestPatrolNamespaceGoing: the keys of a tenant namespace being deleted, or of one whose super
// namespace is, are no drift: the super namespace and its objects are going, and nothing is
// created in a terminating namespace.
func TestPatrolNamespaceGoing(t *testing.T) {
	now := metav1.Now()
	tenantNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns"}}
	goingSuperNS := translateNamespace(tenantNS, testOwner, defaultPolicy)
	goingSuperNS.DeletionTimestamp = &now
	remade := tenantNS.DeepCopy()
	remade.UID = "uid-ns-2"
	for name, tc := range map[string]struct {
		super, tenant []object
	}{
		"tenant namespace terminating, its super namespace gone": {
			tenant: []object{terminatingTenantNS(), MakePod("default", "web").Obj(), tenantService(nil)},
		},
		"tenant namespace gone, its super namespace terminating": {
			super: []object{goingSuperNS, MakePod(testSuperNS, "web").Owned("uid-web").Obj()},
		},
		"tenant namespace made again, the old super namespace terminating": {
			super:  []object{goingSuperNS},
			tenant: []object{remade, MakePod("default", "web").Obj(), tenantService(nil)},
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			h.s.patrol(testContext(t), h.t)
			for _, k := range []kind{kindNamespace, kindPod, kindService} {
				if d := testutil.ToFloat64(h.s.metrics.drift.WithLabelValues(testKey, string(k))); d != 0 {
					t.Errorf("%s drift = %v, want 0", k, d)
				}
			}
		})
	}
}
