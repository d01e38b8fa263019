package syncer

import (
	"context"

	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// EndpointSlices: down, only the ones the tenant makes by hand (usually for a Service without a
// selector): a slice with the label kubernetes.io/service-name whose
// endpointslice.kubernetes.io/managed-by is not one of the two upstream controllers. Same name,
// labels, address type, ports and endpoints in the super namespace, where the super kube-proxy
// joins them to the super Service of that name; tenant pod IPs are super pod IPs, so the
// addresses stay. Target references get the super namespace and lose the tenant UID.
//
// The controllers' slices are never synced, in either direction:
//   - for a Service with a selector the super cluster's endpointslice controller computes its
//     own from the super pods;
//   - for Endpoints synced down (endpoints.go) the super cluster's mirroring controller makes
//     the slices, as the tenant's does in the tenant. A selector-less Service with hand-made
//     Endpoints and hand-made slices thus has, in both clusters, the mirrored slices plus the
//     hand-made ones, each once, which is what kube-proxy expects. Endpoints labelled
//     endpointslice.kubernetes.io/skip-mirror are mirrored in neither cluster: the tenant
//     apiserver's own default/kubernetes is, and its slice, which has no manager label, goes
//     down as a hand-made one.
//
// Those controllers copy the Service's (Endpoints') labels, the ownership labels among them, and
// the mirroring controller its annotations (the tenant UID), onto their slices: a super slice
// managed by one of them is left alone even when it looks owned.

// Values of discoveryv1.LabelManagedBy the upstream controllers set on their slices.
const (
	managedByEndpointSliceController = "endpointslice-controller.k8s.io"
	managedByMirroringController     = "endpointslicemirroring-controller.k8s.io"
)

// controllerManagedSlice reports whether a slice is managed by one of the upstream endpointslice
// controllers.
func controllerManagedSlice(m metav1.Object) bool {
	switch m.GetLabels()[discoveryv1.LabelManagedBy] {
	case managedByEndpointSliceController, managedByMirroringController:
		return true
	}
	return false
}

// handMadeSlice reports whether a tenant slice is synced down: one that names a Service and is
// not a controller's.
func handMadeSlice(es *discoveryv1.EndpointSlice) bool {
	return es.Labels[discoveryv1.LabelServiceName] != "" && !controllerManagedSlice(es)
}

// translateEndpointSlice is the super slice for a hand-made tenant slice.
func translateEndpointSlice(es *discoveryv1.EndpointSlice, owner mapping.Owner) *discoveryv1.EndpointSlice {
	c := es.DeepCopy()
	for i := range c.Endpoints {
		translateTargetRef(c.Endpoints[i].TargetRef, owner) // endpoints.go
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  mapping.SuperMeta(es, owner),
		AddressType: c.AddressType,
		Endpoints:   c.Endpoints,
		Ports:       c.Ports,
	}
}

var endpointSliceDown = down[*discoveryv1.EndpointSlice]{
	kind: kindEndpointSlice,
	translate: func(t *tenant, es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		return translateEndpointSlice(es, t.owner)
	},
	equal: func(desired, existing *discoveryv1.EndpointSlice) bool {
		return stampedMetaEqual(desired, existing) && desired.AddressType == existing.AddressType &&
			apiequality.Semantic.DeepEqual(desired.Endpoints, existing.Endpoints) &&
			apiequality.Semantic.DeepEqual(desired.Ports, existing.Ports)
	},
	merge: func(desired, existing *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		out.Endpoints, out.Ports = desired.Endpoints, desired.Ports
		return out
	},
}

func (s *Syncer) syncEndpointSlice(ctx context.Context, t *tenant, ns, name string) error {
	es, hasTenant, err := lookup(discoverylisters.NewEndpointSliceLister(t.index[kindEndpointSlice]).EndpointSlices(ns).Get(name))
	if err != nil {
		return err
	}
	hasTenant = hasTenant && handMadeSlice(es)
	superNS := mapping.SuperNamespace(t.key, ns)
	ss, hasSuper, err := lookup(discoverylisters.NewEndpointSliceLister(s.superIndex[kindEndpointSlice]).EndpointSlices(superNS).Get(name))
	if err != nil {
		return err
	}
	if hasSuper && controllerManagedSlice(ss) {
		if hasTenant {
			s.recordNotOwned(t, es, kindEndpointSlice, ss)
		}
		return nil
	}
	return endpointSliceDown.sync(ctx, s, t, s.super.DiscoveryV1().EndpointSlices(superNS),
		state[*discoveryv1.EndpointSlice]{tenantNS: ns, tenant: es, hasTenant: hasTenant, super: ss, hasSuper: hasSuper})
}
