package syncer

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Endpoints: down, only for Services without a selector, whose endpoints the tenant manages by
// hand (for Services with a selector the super cluster's endpoints controller computes them from
// the super pods). The super Endpoints of a Service with a selector carry the Service's labels —
// the ownership labels among them — because the endpoints controller copies them: they are
// never touched while the Service has a selector. When it loses it, the controller stops
// managing them but leaves them, with the old addresses: the tenant's Endpoints then take them
// over (takeOverEndpoints), as soon as the super Service without its selector reaches the
// cache (enqueueEndpointsOfUnselected).

func translateEndpoints(ep *corev1.Endpoints, owner mapping.Owner) *corev1.Endpoints {
	subsets := ep.DeepCopy().Subsets
	for i := range subsets {
		for _, addrs := range [][]corev1.EndpointAddress{subsets[i].Addresses, subsets[i].NotReadyAddresses} {
			for j := range addrs {
				translateTargetRef(addrs[j].TargetRef, owner)
			}
		}
	}
	return &corev1.Endpoints{ObjectMeta: mapping.SuperMeta(ep, owner), Subsets: subsets}
}

// translateTargetRef makes ref, an endpoint's reference to the tenant object behind it (nil:
// none), name the super object: in its super namespace, without the tenant object's UID and
// resource version, which mean nothing there.
func translateTargetRef(ref *corev1.ObjectReference, owner mapping.Owner) {
	if ref == nil {
		return
	}
	if ref.Namespace != "" {
		ref.Namespace = mapping.SuperNamespace(owner.ClusterKey, ref.Namespace)
	}
	ref.UID, ref.ResourceVersion = "", ""
}

var endpointsDown = down[*corev1.Endpoints]{
	kind:      kindEndpoints,
	translate: func(t *tenant, ep *corev1.Endpoints) *corev1.Endpoints { return translateEndpoints(ep, t.owner) },
	equal: func(desired, existing *corev1.Endpoints) bool {
		return stampedMetaEqual(desired, existing) && apiequality.Semantic.DeepEqual(desired.Subsets, existing.Subsets)
	},
	merge: func(desired, existing *corev1.Endpoints) *corev1.Endpoints {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Subsets = desired.Subsets
		return out
	},
}

func (s *Syncer) syncEndpoints(ctx context.Context, t *tenant, ns, name string) error {
	superNS := mapping.SuperNamespace(t.key, ns)
	if svc, err := s.superSvcs.Services(superNS).Get(name); err == nil && len(svc.Spec.Selector) > 0 {
		return nil // the super cluster's endpoints controller owns these
	}
	ep, hasTenant, err := lookup(t.endpoints.Endpoints(ns).Get(name))
	if err != nil {
		return err
	}
	tsvc, hasSvc, err := lookup(t.services.Services(ns).Get(name))
	if err != nil {
		return err
	}
	hasTenant = hasTenant && hasSvc && len(tsvc.Spec.Selector) == 0
	se, hasSuper, err := lookup(s.superEps.Endpoints(superNS).Get(name))
	if err != nil {
		return err
	}
	if hasSuper && mapping.TenantUID(se) == "" {
		// Copied labels, no stamp: made by the endpoints controller, not by us.
		if !hasTenant || guard(t, ns, se) != nil {
			return nil
		}
		return s.takeOverEndpoints(ctx, t, ep, se)
	}
	return endpointsDown.sync(ctx, s, t, s.super.CoreV1().Endpoints(superNS),
		state[*corev1.Endpoints]{tenantNS: ns, tenant: ep, hasTenant: hasTenant, super: se, hasSuper: hasSuper})
}

// takeOverEndpoints writes the tenant's Endpoints ep over super Endpoints se that the super
// endpoints controller made while the Service had a selector, and left behind when it lost it
// (upstream does not delete them). The caller checked that the Service now has none and that se
// carries this tenant namespace's ownership labels. An update, not the down sync's
// delete-and-create of an object of another tenant UID: the Service keeps its endpoints.
func (s *Syncer) takeOverEndpoints(ctx context.Context, t *tenant, ep, se *corev1.Endpoints) error {
	klog.FromContext(ctx).V(2).Info("Taking over super Endpoints left by the endpoints controller", "superObject", klog.KObj(se))
	_, err := s.super.CoreV1().Endpoints(se.Namespace).Update(ctx, endpointsDown.merge(endpointsDown.translate(t, ep), se), metav1.UpdateOptions{})
	s.recordRejected(t, ep, kindEndpoints, err)
	return err
}

// enqueueEndpointsOfUnselected queues the tenant Endpoints of a super Service whose update old →
// obj removed its selector. The Endpoints sync leaves the super Endpoints to the endpoints
// controller while the cached super Service has a selector: one that ran after the tenant
// Service lost it but before this update reached the cache did nothing, and the takeover would
// wait for the patrol.
func (s *Syncer) enqueueEndpointsOfUnselected(old, obj any) {
	was, ok1 := old.(*corev1.Service)
	svc, ok2 := obj.(*corev1.Service)
	if !ok1 || !ok2 || len(was.Spec.Selector) == 0 || len(svc.Spec.Selector) > 0 {
		return
	}
	clusterKey := svc.Labels[ownership.LabelClusterKey]
	if ns, ok := mapping.TenantNamespace(svc, clusterKey); ok {
		s.enqueue(clusterKey, objKey{Kind: kindEndpoints, Namespace: ns, Name: svc.Name}, false)
	}
}
