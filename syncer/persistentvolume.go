package syncer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// PersistentVolumes: up only. When a tenant claim's super claim is Bound to a super volume, the
// tenant gets a mirror of that volume: same name, capacity, access modes, volume mode, storage
// class, reclaim policy, mount options, node affinity and volume source, a claimRef to the
// tenant claim, and status Bound; the tenant claim's spec.volumeName is then set (the tenant
// apiserver allows it once, from empty, as it does for a binder). The tenant runs no binder or
// attach-detach controller, so the mirror is the syncer's alone: it goes when no tenant claim is
// bound to it any more (the syncer drops the kubernetes.io/pv-protection finalizer the tenant's
// admission put on it; the tenant's PV protection controller leaves a Bound volume's finalizer
// alone). Only mirror-labelled tenant volumes are touched.

// pvProtectionFinalizer is the finalizer the StorageObjectInUseProtection admission adds to
// every new PersistentVolume.
const pvProtectionFinalizer = "kubernetes.io/pv-protection"

// mirrorPV is the tenant mirror of super volume sp, bound to the tenant claim tc.
func mirrorPV(sp *corev1.PersistentVolume, tc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	spec := sp.Spec.DeepCopy()
	meta := mirrorMeta(sp)
	meta.Annotations = nil // provisioner and binder bookkeeping of the super cluster
	return &corev1.PersistentVolume{
		ObjectMeta: meta,
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      spec.Capacity,
			PersistentVolumeSource:        spec.PersistentVolumeSource,
			AccessModes:                   spec.AccessModes,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: tc.Namespace, Name: tc.Name, UID: tc.UID},
			PersistentVolumeReclaimPolicy: spec.PersistentVolumeReclaimPolicy,
			StorageClassName:              spec.StorageClassName,
			MountOptions:                  spec.MountOptions,
			VolumeMode:                    spec.VolumeMode,
			NodeAffinity:                  spec.NodeAffinity,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
}

var pvUp = mirror[*corev1.PersistentVolume]{
	kind: kindPV,
	equal: func(desired, existing *corev1.PersistentVolume) bool {
		return mapsEqual(desired.Labels, existing.Labels) && apiequality.Semantic.DeepEqual(desired.Spec, existing.Spec)
	},
	immutableChanged: func(desired, existing *corev1.PersistentVolume) bool {
		return !apiequality.Semantic.DeepEqual(desired.Spec.PersistentVolumeSource, existing.Spec.PersistentVolumeSource) ||
			!apiequality.Semantic.DeepEqual(desired.Spec.VolumeMode, existing.Spec.VolumeMode) ||
			(existing.Spec.NodeAffinity != nil && !apiequality.Semantic.DeepEqual(desired.Spec.NodeAffinity, existing.Spec.NodeAffinity))
	},
	merge: func(desired, existing *corev1.PersistentVolume) *corev1.PersistentVolume {
		out := existing.DeepCopy()
		out.Labels = desired.Labels
		out.Spec = desired.Spec
		return out
	},
	finalizers: []string{pvProtectionFinalizer},
}

// boundTenantClaim returns the tenant claim whose super claim is Bound to super volume sp, if
// it is one of tenant t's: the volume's claimRef names a super claim in one of t's super
// namespaces, that claim is t's (guard), is the one the volume was bound to (UID), names the
// volume, is Bound, and was made from the tenant claim that exists now.
func (s *Syncer) boundTenantClaim(t *tenant, sp *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, bool) {
	ref := sp.Spec.ClaimRef
	if ref == nil || sp.Status.Phase != corev1.VolumeBound || sp.DeletionTimestamp != nil {
		return nil, false
	}
	superNS, err := s.superNS.Get(ref.Namespace)
	if err != nil {
		return nil, false
	}
	tenantNS, ok := mapping.TenantNamespace(superNS, t.key)
	if !ok {
		return nil, false
	}
	sc, err := s.superPVCs.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if err != nil || guard(t, tenantNS, sc) != nil || sc.UID != ref.UID ||
		sc.Spec.VolumeName != sp.Name || sc.Status.Phase != corev1.ClaimBound {
		return nil, false
	}
	tc, err := t.pvcs.PersistentVolumeClaims(tenantNS).Get(ref.Name)
	if err != nil || mapping.TenantUID(sc) != tc.UID {
		return nil, false
	}
	return tc, true
}

func (s *Syncer) syncPV(ctx context.Context, t *tenant, name string) error {
	var desired *corev1.PersistentVolume
	var claim *corev1.PersistentVolumeClaim
	sp, hasSuper, err := lookup(s.superPVs.Get(name))
	if err != nil {
		return err
	}
	want := false
	if hasSuper {
		if claim, want = s.boundTenantClaim(t, sp); want {
			desired = mirrorPV(sp, claim)
		}
	}
	tv, has, err := lookup(t.pvs.Get(name))
	if err != nil {
		return err
	}
	pvs := t.client.CoreV1().PersistentVolumes()
	got, ok, err := pvUp.sync(ctx, t, pvs, desired, want, tv, has)
	if err != nil || !ok {
		return inTenant(err)
	}
	if got.Status.Phase != desired.Status.Phase {
		up := got.DeepCopy()
		up.Status = desired.Status
		if _, err := pvs.UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil {
			return inTenant(fmt.Errorf("setting the mirror's status: %w", err))
		}
	}
	if claim.Spec.VolumeName != "" {
		return nil // set already (or named by the tenant, which the super claim ignored)
	}
	klog.FromContext(ctx).V(2).Info("Setting the tenant claim's volume", "claim", klog.KObj(claim))
	up := claim.DeepCopy()
	up.Spec.VolumeName = name
	_, err = t.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, up, metav1.UpdateOptions{})
	return inTenant(err)
}

// enqueueSuperPV queues a super volume for the tenant whose super namespace its claimRef names.
func (s *Syncer) enqueueSuperPV(obj any) {
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	pv, ok := m.(*corev1.PersistentVolume)
	if !ok || pv.Spec.ClaimRef == nil {
		return
	}
	ns, err := s.superNS.Get(pv.Spec.ClaimRef.Namespace)
	if err != nil {
		return
	}
	for _, t := range s.servingTenants() {
		if _, ok := mapping.TenantNamespace(ns, t.key); ok {
			s.queue.Add(t.key, objKey{Kind: kindPV, Name: pv.Name})
			return
		}
	}
}

// enqueueClaimVolumes queues the volumes a claim pair names, so a binding seen on the claims
// (the super binder binds the claim last) reaches the mirror.
func (s *Syncer) enqueueClaimVolumes(t *tenant, claims ...*corev1.PersistentVolumeClaim) {
	for _, c := range claims {
		if c != nil && c.Spec.VolumeName != "" {
			s.queue.Add(t.key, objKey{Kind: kindPV, Name: c.Spec.VolumeName})
		}
	}
}
