package syncer

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// PersistentVolumeClaims.
//
// Down: the claim as the tenant wrote it, minus spec.volumeName: volumes are provisioned and
// bound in the super cluster (the tenant runs no binder). A larger storage request propagates
// (expansion); the rest of a claim's spec is immutable. The annotations the super cluster's
// binder, provisioners and scheduler put on the super claim stay (superOwnedAnnotation).
//
// Up: status (phase, capacity, access modes, conditions); the bound volume is mirrored into the
// tenant and named in the tenant claim's spec.volumeName by persistentvolume.go.

func translatePVC(pvc *corev1.PersistentVolumeClaim, owner mapping.Owner) *corev1.PersistentVolumeClaim {
	spec := pvc.Spec.DeepCopy()
	spec.VolumeName = ""
	// A cross-namespace data source (CrossNamespaceVolumeDataSource) names a tenant namespace:
	// in the super cluster, its super namespace, not a super namespace of that name.
	if ref := spec.DataSourceRef; ref != nil && ref.Namespace != nil && *ref.Namespace != "" {
		ref.Namespace = ptr.To(mapping.SuperNamespace(owner.ClusterKey, *ref.Namespace))
	}
	return &corev1.PersistentVolumeClaim{ObjectMeta: mapping.SuperMeta(pvc, owner), Spec: *spec}
}

var pvcDown = down[*corev1.PersistentVolumeClaim]{
	kind: kindPVC,
	translate: func(t *tenant, pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
		return translatePVC(pvc, t.owner)
	},
	equal: func(desired, existing *corev1.PersistentVolumeClaim) bool {
		return stampedMetaEqual(desired, existing) &&
			apiequality.Semantic.DeepEqual(desired.Spec.Resources.Requests, existing.Spec.Resources.Requests)
	},
	merge: func(desired, existing *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Spec.Resources.Requests = desired.Spec.Resources.Requests
		return out
	},
}

func (s *Syncer) syncPVC(ctx context.Context, t *tenant, ns, name string) error {
	tc, hasTenant, err := lookup(t.pvcs.PersistentVolumeClaims(ns).Get(name))
	if err != nil {
		return err
	}
	superNS := mapping.SuperNamespace(t.key, ns)
	sc, hasSuper, err := lookup(s.superPVCs.PersistentVolumeClaims(superNS).Get(name))
	if err != nil {
		return err
	}
	// A terminating tenant claim waits for its pods (pvc-protection); its super claim goes
	// when the tenant claim is gone.
	st := state[*corev1.PersistentVolumeClaim]{tenantNS: ns, tenant: tc, hasTenant: hasTenant, super: sc, hasSuper: hasSuper}
	if err := pvcDown.sync(ctx, s, t, s.super.CoreV1().PersistentVolumeClaims(superNS), st); err != nil {
		return err
	}
	s.enqueueClaimVolumes(t, tc, sc)
	if !hasTenant || !hasSuper || guard(t, ns, sc) != nil || mapping.TenantUID(sc) != tc.UID ||
		apiequality.Semantic.DeepEqual(tc.Status, sc.Status) {
		return nil
	}
	up := tc.DeepCopy()
	up.Status = *sc.Status.DeepCopy()
	_, err = t.client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	return inTenant(err)
}
