package syncer

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Secrets: down only, scoped like ConfigMaps (configmap.go). Service-account token Secrets are
// never synced: they hold tenant credentials that pods in the super cluster get another way.

func translateSecret(sec *corev1.Secret, owner mapping.Owner) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: mapping.SuperMeta(sec, owner),
		Type:       sec.Type,
		Data:       sec.Data,
		Immutable:  sec.Immutable,
	}
}

// secretSyncable reports whether a tenant Secret may be synced at all. Names starting with
// tokenSecretPrefix are reserved for the super Secrets of pod tokens (podtoken.go).
func secretSyncable(sec *corev1.Secret) bool {
	return sec.Type != corev1.SecretTypeServiceAccountToken && !strings.HasPrefix(sec.Name, tokenSecretPrefix)
}

var secretDown = down[*corev1.Secret]{
	kind:      kindSecret,
	translate: func(t *tenant, sec *corev1.Secret) *corev1.Secret { return translateSecret(sec, t.owner) },
	equal: func(desired, existing *corev1.Secret) bool {
		return stampedMetaEqual(desired, existing) && apiequality.Semantic.DeepEqual(desired.Data, existing.Data)
	},
	merge: func(desired, existing *corev1.Secret) *corev1.Secret {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Data = desired.Data
		return out
	},
}

func (s *Syncer) syncSecret(ctx context.Context, t *tenant, ns, name string) error {
	sec, hasTenant, err := lookup(t.secrets.Secrets(ns).Get(name))
	if err != nil {
		return err
	}
	hasTenant = hasTenant && secretSyncable(sec) && s.wanted(t, indexPodSecrets, ns, name)
	superNS := mapping.SuperNamespace(t.key, ns)
	ss, hasSuper, err := lookup(s.superSecrets.Secrets(superNS).Get(name))
	if err != nil {
		return err
	}
	if hasSuper && isTokenSecretObj(ss) {
		return nil // a pod's token Secret: the pod's sync keeps it
	}
	return secretDown.sync(ctx, s, t, s.super.CoreV1().Secrets(superNS),
		state[*corev1.Secret]{tenantNS: ns, tenant: sec, hasTenant: hasTenant, super: ss, hasSuper: hasSuper})
}
