package syncer

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Services.
//
// Down: type, ports, selector and traffic settings (session affinity also on updates). Cluster IPs are allocated in the super
// cluster first: a tenant apiserver run with --service-ip-allocator asks the syncer
// (serviceip.go), which creates the super Service as a reservation; the tenant Service is created
// with its IPs, and the down sync adopts the reservation. Without the allocator (or for a super
// Service recreated later) the super cluster allocates on its own and the IPs differ. Node ports
// are always the super cluster's. Headless stays headless.
//
// Up: status.loadBalancer.

func translateService(svc *corev1.Service, owner mapping.Owner) *corev1.Service {
	spec := corev1.ServiceSpec{
		Type:                     svc.Spec.Type,
		Selector:                 svc.Spec.Selector,
		SessionAffinity:          svc.Spec.SessionAffinity,
		SessionAffinityConfig:    svc.Spec.SessionAffinityConfig,
		ExternalName:             svc.Spec.ExternalName,
		ExternalTrafficPolicy:    svc.Spec.ExternalTrafficPolicy,
		InternalTrafficPolicy:    svc.Spec.InternalTrafficPolicy,
		PublishNotReadyAddresses: svc.Spec.PublishNotReadyAddresses,
		IPFamilyPolicy:           svc.Spec.IPFamilyPolicy,
		IPFamilies:               svc.Spec.IPFamilies,
		LoadBalancerClass:        svc.Spec.LoadBalancerClass,
		TrafficDistribution:      svc.Spec.TrafficDistribution,
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		spec.ClusterIP = corev1.ClusterIPNone
		spec.ClusterIPs = []string{corev1.ClusterIPNone}
	}
	for _, p := range svc.Spec.Ports {
		p.NodePort = 0 // the super cluster's allocator picks node ports
		spec.Ports = append(spec.Ports, p)
	}
	return &corev1.Service{ObjectMeta: mapping.SuperMeta(svc, owner), Spec: spec}
}

// serviceDownEqual compares what the down sync owns, ignoring what the super cluster allocates.
func serviceDownEqual(desired, existing *corev1.Service) bool {
	if !stampedMetaEqual(desired, existing) || desired.Spec.Type != existing.Spec.Type ||
		desired.Spec.ExternalName != existing.Spec.ExternalName ||
		desired.Spec.PublishNotReadyAddresses != existing.Spec.PublishNotReadyAddresses ||
		desired.Spec.SessionAffinity != existing.Spec.SessionAffinity ||
		!apiequality.Semantic.DeepEqual(desired.Spec.SessionAffinityConfig, existing.Spec.SessionAffinityConfig) ||
		!apiequality.Semantic.DeepEqual(desired.Spec.Selector, existing.Spec.Selector) ||
		len(desired.Spec.Ports) != len(existing.Spec.Ports) {
		return false
	}
	for i, p := range desired.Spec.Ports {
		q := existing.Spec.Ports[i]
		q.NodePort = 0
		if !apiequality.Semantic.DeepEqual(p, q) {
			return false
		}
	}
	return true
}

// mergeService writes desired into a copy of existing, keeping the allocated cluster IPs and
// the node ports of ports that stay.
func mergeService(desired, existing *corev1.Service) *corev1.Service {
	out := existing.DeepCopy()
	mergeMeta(desired, out)
	nodePorts := map[int32]int32{}
	for _, p := range existing.Spec.Ports {
		nodePorts[p.Port] = p.NodePort
	}
	out.Spec.Type = desired.Spec.Type
	out.Spec.Selector = desired.Spec.Selector
	out.Spec.ExternalName = desired.Spec.ExternalName
	out.Spec.PublishNotReadyAddresses = desired.Spec.PublishNotReadyAddresses
	out.Spec.SessionAffinity, out.Spec.SessionAffinityConfig = desired.Spec.SessionAffinity, desired.Spec.SessionAffinityConfig
	out.Spec.Ports = nil
	for _, p := range desired.Spec.Ports {
		if desired.Spec.Type == corev1.ServiceTypeNodePort || desired.Spec.Type == corev1.ServiceTypeLoadBalancer {
			p.NodePort = nodePorts[p.Port]
		}
		out.Spec.Ports = append(out.Spec.Ports, p)
	}
	return out
}

var serviceDown = down[*corev1.Service]{
	kind:      kindService,
	translate: func(t *tenant, svc *corev1.Service) *corev1.Service { return translateService(svc, t.owner) },
	equal:     serviceDownEqual,
	merge:     mergeService,
}

func (s *Syncer) syncService(ctx context.Context, t *tenant, ns, name string) error {
	ts, hasTenant, err := lookup(t.services.Services(ns).Get(name))
	if err != nil {
		return err
	}
	superNS := mapping.SuperNamespace(t.key, ns)
	ss, hasSuper, err := lookup(s.superSvcs.Services(superNS).Get(name))
	if err != nil {
		return err
	}
	if hasSuper && guard(t, ns, ss) == nil {
		var keep bool
		if ss, keep = adoptReservation(ts, ss, hasTenant, time.Now()); keep {
			return nil // a reservation whose tenant Service is still being created; the patrol comes back
		}
	}
	st := state[*corev1.Service]{tenantNS: ns, tenant: ts, hasTenant: hasTenant, super: ss, hasSuper: hasSuper}
	if err := serviceDown.sync(ctx, s, t, s.super.CoreV1().Services(superNS), st); err != nil {
		return err
	}
	if !hasTenant || !hasSuper || guard(t, ns, ss) != nil || mapping.TenantUID(ss) != ts.UID {
		return nil
	}
	if apiequality.Semantic.DeepEqual(ts.Status.LoadBalancer, ss.Status.LoadBalancer) {
		return nil
	}
	up := ts.DeepCopy()
	up.Status.LoadBalancer = ss.Status.LoadBalancer
	_, err = t.client.CoreV1().Services(ns).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	return err
}
