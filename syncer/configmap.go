package syncer

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// ConfigMaps: down only. With spec.sync.secretsAndConfigMaps Used (the default) a ConfigMap is
// synced while a tenant pod in its namespace uses it, with All always. The tenant's
// kube-root-ca.crt is never synced: the super cluster publishes its own under that name in every
// namespace; pods get the tenant's CA with their tenant token (podtoken.go).

// rootCAConfigMap is the ConfigMap kube-controller-manager publishes in every namespace.
const rootCAConfigMap = "kube-root-ca.crt"

func translateConfigMap(cm *corev1.ConfigMap, owner mapping.Owner) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: mapping.SuperMeta(cm, owner),
		Data:       cm.Data,
		BinaryData: cm.BinaryData,
		Immutable:  cm.Immutable,
	}
}

var configMapDown = down[*corev1.ConfigMap]{
	kind:      kindConfigMap,
	translate: func(t *tenant, cm *corev1.ConfigMap) *corev1.ConfigMap { return translateConfigMap(cm, t.owner) },
	equal: func(desired, existing *corev1.ConfigMap) bool {
		return stampedMetaEqual(desired, existing) && apiequality.Semantic.DeepEqual(desired.Data, existing.Data) &&
			apiequality.Semantic.DeepEqual(desired.BinaryData, existing.BinaryData)
	},
	merge: func(desired, existing *corev1.ConfigMap) *corev1.ConfigMap {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Data, out.BinaryData = desired.Data, desired.BinaryData
		return out
	},
}

func (s *Syncer) syncConfigMap(ctx context.Context, t *tenant, ns, name string) error {
	cm, hasTenant, err := lookup(t.configMaps.ConfigMaps(ns).Get(name))
	if err != nil {
		return err
	}
	hasTenant = hasTenant && name != rootCAConfigMap && s.wanted(t, indexPodConfigMaps, ns, name)
	superNS := mapping.SuperNamespace(t.key, ns)
	sc, hasSuper, err := lookup(s.superCMs.ConfigMaps(superNS).Get(name))
	if err != nil {
		return err
	}
	return configMapDown.sync(ctx, s, t, s.super.CoreV1().ConfigMaps(superNS),
		state[*corev1.ConfigMap]{tenantNS: ns, tenant: cm, hasTenant: hasTenant, super: sc, hasSuper: hasSuper})
}

// wanted reports whether a Secret or ConfigMap (by the pod index that references its kind)
// should be in the super cluster under the tenant's scope setting.
func (s *Syncer) wanted(t *tenant, index, ns, name string) bool {
	if t.settings.Load().syncAll {
		return true
	}
	users, err := t.podIndex.ByIndex(index, ns+"/"+name)
	return err == nil && len(users) > 0
}
