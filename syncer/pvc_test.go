package syncer

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func tenantPVC() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: ptr.To("standard"),
			VolumeName:       "tenant-pv",
		},
	}
}

func TestTranslatePVC(t *testing.T) {
	want := &corev1.PersistentVolumeClaim{ObjectMeta: stampedMeta, Spec: tenantPVC().Spec}
	want.Spec.VolumeName = ""
	if diff := cmp.Diff(want, translatePVC(tenantPVC(), testOwner)); diff != "" {
		t.Errorf("translatePVC (-want +got):\n%s", diff)
	}
	// A cross-namespace data source names the tenant namespace's super namespace.
	cross := tenantPVC()
	cross.Spec.DataSourceRef = &corev1.TypedObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot",
		Name: "snap", Namespace: ptr.To("default")}
	got := translatePVC(cross, testOwner)
	if ns := got.Spec.DataSourceRef.Namespace; ns == nil || *ns != testSuperNS {
		t.Errorf("translatePVC: dataSourceRef.namespace %v, want %q", ns, testSuperNS)
	}
	if *cross.Spec.DataSourceRef.Namespace != "default" {
		t.Error("translatePVC changed the tenant claim")
	}
}

func TestSyncPVC(t *testing.T) {
	bound := translatePVC(tenantPVC(), testOwner)
	bound.Spec.VolumeName = "pvc-123"
	bound.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	grown := tenantPVC()
	grown.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	byBinder := bound.DeepCopy()
	byBinder.Annotations = maps.Clone(bound.Annotations)
	byBinder.Annotations["pv.kubernetes.io/bind-completed"] = "yes"
	byBinder.Annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
	cases := map[string]struct {
		super, tenant         []object
		wantSuper, wantTenant []string
	}{
		"new claim goes down": {
			super:     []object{superDefaultNS.DeepCopy()},
			tenant:    []object{tenantPVC()},
			wantSuper: []string{"create persistentvolumeclaims demo-5c9a8459-default/web"},
		},
		"bound status comes up": {
			super:      []object{bound},
			tenant:     []object{tenantPVC()},
			wantTenant: []string{"update persistentvolumeclaims/status default/web"},
		},
		"expansion goes down": {
			super:      []object{bound},
			tenant:     []object{grown},
			wantSuper:  []string{"update persistentvolumeclaims demo-5c9a8459-default/web"},
			wantTenant: []string{"update persistentvolumeclaims/status default/web"},
		},
		"the super binder's annotations stay": {
			super:      []object{byBinder},
			tenant:     []object{tenantPVC()},
			wantTenant: []string{"update persistentvolumeclaims/status default/web"},
		},
		"orphan claim is deleted": {
			super:     []object{bound},
			wantSuper: []string{"delete persistentvolumeclaims demo-5c9a8459-default/web"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			if err := h.s.syncPVC(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantSuper, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTenant, writes(h.tenantCS)); diff != "" {
				t.Errorf("tenant writes (-want +got):\n%s", diff)
			}
		})
	}
}
