package syncer

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Ingresses: down when the VirtualCluster opts in (spec.sync.kinds Ingress), for the super
// cluster's ingress controller; backends name Services and TLS Secrets of the same namespace,
// which keep their names. (TLS Secrets go down only if a pod uses them, or with
// secretsAndConfigMaps All.) Up: status.loadBalancer.

func translateIngress(ing *networkingv1.Ingress, owner mapping.Owner) *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: mapping.SuperMeta(ing, owner), Spec: *ing.Spec.DeepCopy()}
}

var ingressDown = down[*networkingv1.Ingress]{
	kind: kindIngress,
	translate: func(t *tenant, ing *networkingv1.Ingress) *networkingv1.Ingress {
		return translateIngress(ing, t.owner)
	},
	equal: func(desired, existing *networkingv1.Ingress) bool {
		return stampedMetaEqual(desired, existing) && apiequality.Semantic.DeepEqual(desired.Spec, existing.Spec)
	},
	merge: func(desired, existing *networkingv1.Ingress) *networkingv1.Ingress {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Spec = desired.Spec
		return out
	},
}

func (s *Syncer) syncIngress(ctx context.Context, t *tenant, ns, name string) error {
	ti, hasTenant, err := lookup(t.ingresses.Ingresses(ns).Get(name))
	if err != nil {
		return err
	}
	hasTenant = hasTenant && t.settings.Load().optedIn(v1alpha1.SyncKindIngress)
	superNS := mapping.SuperNamespace(t.key, ns)
	si, hasSuper, err := lookup(s.superIngresses.Ingresses(superNS).Get(name))
	if err != nil {
		return err
	}
	st := state[*networkingv1.Ingress]{tenantNS: ns, tenant: ti, hasTenant: hasTenant, super: si, hasSuper: hasSuper}
	if err := ingressDown.sync(ctx, s, t, s.super.NetworkingV1().Ingresses(superNS), st); err != nil {
		return err
	}
	if !hasTenant || !hasSuper || guard(t, ns, si) != nil || mapping.TenantUID(si) != ti.UID ||
		apiequality.Semantic.DeepEqual(ti.Status.LoadBalancer, si.Status.LoadBalancer) {
		return nil
	}
	up := ti.DeepCopy()
	up.Status.LoadBalancer = si.Status.LoadBalancer
	_, err = t.client.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	return inTenant(err)
}
