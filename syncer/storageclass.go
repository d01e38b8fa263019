package syncer

import (
	"context"

	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// StorageClasses: up only. Every StorageClass the operator publishes (label
// tenancy.vnest.dev/published=true) is copied into every tenant, so tenant claims can name it
// and the tenant's default-class admission knows the super cluster's default (the
// is-default-class annotation is copied). The copy is removed when the super class is deleted
// or unlabelled. A tenant StorageClass of the same name that the syncer did not make is left
// alone.

// translateStorageClass is the tenant copy of a published StorageClass.
func translateStorageClass(sc *storagev1.StorageClass) *storagev1.StorageClass {
	c := sc.DeepCopy()
	return &storagev1.StorageClass{
		ObjectMeta:           mirrorMeta(sc),
		Provisioner:          c.Provisioner,
		Parameters:           c.Parameters,
		ReclaimPolicy:        c.ReclaimPolicy,
		MountOptions:         c.MountOptions,
		AllowVolumeExpansion: c.AllowVolumeExpansion,
		VolumeBindingMode:    c.VolumeBindingMode,
		AllowedTopologies:    c.AllowedTopologies,
	}
}

var storageClassUp = mirror[*storagev1.StorageClass]{
	kind: kindStorageClass,
	equal: func(desired, existing *storagev1.StorageClass) bool {
		return mirrorMetaEqual(desired, existing) &&
			apiequality.Semantic.DeepEqual(desired.MountOptions, existing.MountOptions) &&
			apiequality.Semantic.DeepEqual(desired.AllowVolumeExpansion, existing.AllowVolumeExpansion) &&
			apiequality.Semantic.DeepEqual(desired.AllowedTopologies, existing.AllowedTopologies)
	},
	immutableChanged: func(desired, existing *storagev1.StorageClass) bool {
		return desired.Provisioner != existing.Provisioner ||
			!apiequality.Semantic.DeepEqual(desired.Parameters, existing.Parameters) ||
			!apiequality.Semantic.DeepEqual(desired.ReclaimPolicy, existing.ReclaimPolicy) ||
			!apiequality.Semantic.DeepEqual(desired.VolumeBindingMode, existing.VolumeBindingMode)
	},
	merge: func(desired, existing *storagev1.StorageClass) *storagev1.StorageClass {
		out := existing.DeepCopy()
		out.Labels, out.Annotations = desired.Labels, desired.Annotations
		out.MountOptions, out.AllowVolumeExpansion, out.AllowedTopologies = desired.MountOptions, desired.AllowVolumeExpansion, desired.AllowedTopologies
		return out
	},
}

func (s *Syncer) syncStorageClass(ctx context.Context, t *tenant, name string) error {
	sc, published, err := lookup(s.superSCs.Get(name))
	if err != nil {
		return err
	}
	tc, has, err := lookup(t.scs.Get(name))
	if err != nil {
		return err
	}
	var desired *storagev1.StorageClass
	if published {
		desired = translateStorageClass(sc)
	}
	_, _, err = storageClassUp.sync(ctx, t, t.client.StorageV1().StorageClasses(), desired, published, tc, has)
	return inTenant(err)
}
