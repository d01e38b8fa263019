package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/internal/ownership"
)

func publishedStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "fast", UID: "super-sc-uid", ResourceVersion: "3",
			Labels: map[string]string{ownership.LabelPublished: "true", "tier": "ssd"},
			Annotations: map[string]string{isDefaultClass: "true",
				corev1.LastAppliedConfigAnnotation: "{}", ownership.AnnotationVirtualCluster: "x/y"}},
		Provisioner:          "kubernetes.io/no-provisioner",
		Parameters:           map[string]string{"type": "ssd"},
		ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimRetain),
		MountOptions:         []string{"noatime"},
		AllowVolumeExpansion: ptr.To(true),
		VolumeBindingMode:    ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

func TestTranslateStorageClass(t *testing.T) {
	sc := publishedStorageClass()
	want := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "fast",
			Labels:      map[string]string{ownership.LabelMirror: "true", "tier": "ssd"},
			Annotations: map[string]string{isDefaultClass: "true"}},
		Provisioner:          sc.Provisioner,
		Parameters:           sc.Parameters,
		ReclaimPolicy:        sc.ReclaimPolicy,
		MountOptions:         sc.MountOptions,
		AllowVolumeExpansion: sc.AllowVolumeExpansion,
		VolumeBindingMode:    sc.VolumeBindingMode,
	}
	if diff := cmp.Diff(want, translateStorageClass(sc)); diff != "" {
		t.Errorf("translateStorageClass (-want +got):\n%s", diff)
	}
}

func TestSyncStorageClass(t *testing.T) {
	copied := translateStorageClass(publishedStorageClass())
	copied.UID = "copy-uid"
	stale := copied.DeepCopy()
	stale.AllowVolumeExpansion = ptr.To(false)
	reprovisioned := copied.DeepCopy()
	reprovisioned.Provisioner = "example.com/old"
	own := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast", UID: "own"}, Provisioner: "example.com/own"}
	cases := map[string]struct {
		super, tenant []object
		want          []string
		wantErr       bool
		wantEvent     bool
	}{
		"published class is copied":   {super: []object{publishedStorageClass()}, want: []string{"create storageclasses /fast"}},
		"copy in sync":                {super: []object{publishedStorageClass()}, tenant: []object{copied}},
		"a mutable change is updated": {super: []object{publishedStorageClass()}, tenant: []object{stale}, want: []string{"update storageclasses /fast"}},
		"an immutable change replaces the copy": {
			super: []object{publishedStorageClass()}, tenant: []object{reprovisioned},
			want: []string{"delete storageclasses /fast"}, wantErr: true, // and is created on the retry
		},
		"unpublished class's copy goes":      {tenant: []object{copied}, want: []string{"delete storageclasses /fast"}},
		"the tenant's own class stays":       {super: []object{publishedStorageClass()}, tenant: []object{own}, wantEvent: true},
		"the tenant's own class stays alone": {tenant: []object{own}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			if err := h.s.syncStorageClass(testContext(t), h.t, "fast"); (err != nil) != tc.wantErr {
				t.Fatalf("syncStorageClass = %v, want an error: %v", err, tc.wantErr)
			}
			checkMirrorSync(t, h, tc.want, tc.wantEvent)
		})
	}
}

// TestPatrolPublished: the patrol queues every published class for a tenant and counts a
// missing copy and a copy of nothing as drift, not the tenant's own class of a published name.
func TestPatrolPublished(t *testing.T) {
	other := publishedStorageClass()
	other.Name = "other"
	orphan := translateStorageClass(publishedStorageClass())
	orphan.Name = "orphan"
	own := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "example.com/own"}
	h := newHarness(t, []object{publishedStorageClass(), other}, []object{own, orphan})
	h.s.patrol(testContext(t), h.t)
	got := map[objKey]bool{}
	for h.s.queue.Len(testKey) > 0 {
		k, _ := h.s.queue.Get()
		got[k.Item] = true
		h.s.queue.Done(k.Tenant, k.Item)
	}
	for _, n := range []string{"fast", "other", "orphan"} {
		if !got[objKey{Kind: kindStorageClass, Name: n}] {
			t.Errorf("StorageClass %s not queued; queued %v", n, got)
		}
	}
	if d := testutil.ToFloat64(h.s.metrics.drift.WithLabelValues(testKey, string(kindStorageClass))); d != 2 {
		t.Errorf("StorageClass drift = %v, want 2 (other missing, orphan)", d)
	}
}

const isDefaultClass = "storageclass.kubernetes.io/is-default-class"
