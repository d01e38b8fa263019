package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vnest-dev/vnest/internal/ownership"
)

const testPV = "pvc-123"

// superPV is a super volume bound to the super claim of tenantPVC (UID superClaimUID).
func superPV() *corev1.PersistentVolume {
	fs := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: testPV, UID: "super-pv-uid", Labels: map[string]string{"zone": "a", ownership.LabelClusterKey: "x"},
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "hostpath"}, Finalizers: []string{pvProtectionFinalizer}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/pv"}},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: testSuperNS, Name: "web", UID: superClaimUID, ResourceVersion: "7"},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "standard",
			MountOptions:                  []string{"ro"},
			VolumeMode:                    &fs,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
}

const superClaimUID = "super-claim-uid"

// boundSuperPVC is the super claim of tenantPVC, Bound to testPV.
func boundSuperPVC() *corev1.PersistentVolumeClaim {
	sc := translatePVC(tenantPVC(), testOwner)
	sc.UID = superClaimUID
	sc.Spec.VolumeName = testPV
	sc.Status.Phase = corev1.ClaimBound
	return sc
}

// unboundTenantPVC is tenantPVC as a tenant writes it: no volume named.
func unboundTenantPVC() *corev1.PersistentVolumeClaim {
	tc := tenantPVC()
	tc.Spec.VolumeName = ""
	return tc
}

func TestMirrorPV(t *testing.T) {
	sp := superPV()
	want := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: testPV, Labels: map[string]string{"zone": "a", ownership.LabelMirror: "true"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      sp.Spec.Capacity,
			PersistentVolumeSource:        sp.Spec.PersistentVolumeSource,
			AccessModes:                   sp.Spec.AccessModes,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "default", Name: "web", UID: "uid-web"},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "standard",
			MountOptions:                  []string{"ro"},
			VolumeMode:                    sp.Spec.VolumeMode,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	if diff := cmp.Diff(want, mirrorPV(sp, unboundTenantPVC())); diff != "" {
		t.Errorf("mirrorPV (-want +got):\n%s", diff)
	}
}

func TestSyncPV(t *testing.T) {
	superNS := translateNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner, defaultPolicy)
	mirror := mirrorPV(superPV(), unboundTenantPVC())
	mirror.UID, mirror.Finalizers = "mirror-uid", []string{pvProtectionFinalizer}
	pending := mirror.DeepCopy()
	pending.Status.Phase = corev1.VolumePending
	own := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: testPV, UID: "own"}}
	released := superPV()
	released.Status.Phase = corev1.VolumeReleased
	otherTenantsClaim := boundSuperPVC()
	otherTenantsClaim.Labels[ownership.LabelClusterKey] = "other-00000000"
	earlierClaim := boundSuperPVC()
	earlierClaim.Annotations[ownership.AnnotationTenantUID] = "uid-earlier"
	unbound := boundSuperPVC()
	unbound.Status.Phase = corev1.ClaimPending
	cases := map[string]struct {
		super, tenant []object
		want          []string
		wantEvent     bool
	}{
		"bound volume is mirrored and named by the claim": {
			super:  []object{superNS, superPV(), boundSuperPVC()},
			tenant: []object{unboundTenantPVC()},
			want: []string{"create persistentvolumes /" + testPV, "update persistentvolumeclaims default/web",
				"update persistentvolumes/status /" + testPV},
		},
		"mirror in sync: nothing to do": {
			super:  []object{superNS, superPV(), boundSuperPVC()},
			tenant: []object{tenantPVC(), mirror},
		},
		"mirror status comes round": {
			super:  []object{superNS, superPV(), boundSuperPVC()},
			tenant: []object{tenantPVC(), pending},
			want:   []string{"update persistentvolumes/status /" + testPV},
		},
		"super claim not bound yet": {
			super:  []object{superNS, superPV(), unbound},
			tenant: []object{unboundTenantPVC()},
		},
		"released volume's mirror goes (finalizer first)": {
			super:  []object{superNS, released},
			tenant: []object{tenantPVC(), mirror},
			want:   []string{"delete persistentvolumes /" + testPV, "update persistentvolumes /" + testPV},
		},
		"deleted volume's mirror goes": {
			tenant: []object{mirror},
			want:   []string{"delete persistentvolumes /" + testPV, "update persistentvolumes /" + testPV},
		},
		"another tenant's claim is not mirrored": {
			super:  []object{superNS, superPV(), otherTenantsClaim},
			tenant: []object{unboundTenantPVC()},
		},
		"claim of an earlier tenant claim is not mirrored": {
			super:  []object{superNS, superPV(), earlierClaim},
			tenant: []object{unboundTenantPVC()},
		},
		"the tenant's own volume is left alone": {
			super:     []object{superNS, superPV(), boundSuperPVC()},
			tenant:    []object{unboundTenantPVC(), own},
			wantEvent: true,
		},
		"the tenant's own volume is left alone when nothing is bound": {
			tenant: []object{own},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			// As the apiserver does, a create ignores the status.
			h.tenantCS.PrependReactor("create", "persistentvolumes", func(a k8stesting.Action) (bool, runtime.Object, error) {
				a.(k8stesting.CreateAction).GetObject().(*corev1.PersistentVolume).Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
				return false, nil, nil
			})
			if err := h.s.syncPV(testContext(t), h.t, testPV); err != nil {
				t.Fatal(err)
			}
			checkMirrorSync(t, h, tc.want, tc.wantEvent)
		})
	}
}

// TestSyncPVCQueuesItsVolume: the super binder binds the claim last, so the claim's sync must
// bring the volume's key round.
func TestSyncPVCQueuesItsVolume(t *testing.T) {
	h := newHarness(t, []object{boundSuperPVC()}, []object{unboundTenantPVC()})
	if err := h.s.syncPVC(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	k, _ := h.s.queue.Get()
	if want := (objKey{Kind: kindPV, Name: testPV}); k.Item != want {
		t.Errorf("queued %v, want %v", k.Item, want)
	}
}

func TestEnqueueSuperPV(t *testing.T) {
	superNS := translateNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, testOwner, defaultPolicy)
	foreignNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}
	h := newHarness(t, []object{superNS, foreignNS}, nil)
	foreign := superPV()
	foreign.Name, foreign.Spec.ClaimRef.Namespace = "foreign", "kube-system"
	unclaimed := superPV()
	unclaimed.Name, unclaimed.Spec.ClaimRef = "unclaimed", nil
	for _, pv := range []*corev1.PersistentVolume{foreign, unclaimed, superPV()} {
		h.s.enqueueSuperPV(pv)
	}
	if n := h.s.queue.Len(testKey); n != 1 {
		t.Fatalf("%d keys queued, want 1", n)
	}
	if k, _ := h.s.queue.Get(); k.Item != (objKey{Kind: kindPV, Name: testPV}) {
		t.Errorf("queued %v", k.Item)
	}
}
