package syncer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Services.
//
// Down: type, ports, selector, session affinity, traffic settings and the source ranges a load
// balancer admits, also on updates (the load-balancer class, immutable on a LoadBalancer, only
// with a change of type; the IP families and a cluster IP once allocated never, the IP family
// policy does). Cluster IPs are allocated in the super cluster first: a tenant apiserver run with --service-ip-allocator asks the syncer
// (serviceip.go), which creates the super Service as a reservation; the tenant Service is created
// with its IPs, and the down sync adopts the reservation. A super Service created later (its
// reservation deleted by hand, say) asks for the tenant's cluster IPs and node ports, and so does
// a port that becomes a node port (ClusterIP → NodePort). If the super cluster refuses them as
// invalid (taken, or outside its ranges: a tenant without the allocator), the write goes again
// without them, the super cluster allocates its own and a ServiceAllocationDiffers warning on the
// tenant Service says so: pods see the super values (env, DNS). Headless stays headless.
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
		LoadBalancerSourceRanges: svc.Spec.LoadBalancerSourceRanges,
		TrafficDistribution:      svc.Spec.TrafficDistribution,
	}
	if svc.Spec.ClusterIP != "" && spec.Type != corev1.ServiceTypeExternalName && !isTenantAPIService(svc.Namespace, svc.Name) {
		// The tenant's own (headless: None), which a create asks the super cluster for.
		spec.ClusterIP, spec.ClusterIPs = svc.Spec.ClusterIP, svc.Spec.ClusterIPs
	}
	for _, p := range svc.Spec.Ports {
		if !hasNodePorts(spec.Type) {
			p.NodePort = 0
		}
		spec.Ports = append(spec.Ports, p)
	}
	return &corev1.Service{ObjectMeta: mapping.SuperMeta(svc, owner), Spec: spec}
}

// isTenantAPIService reports whether ns/name is the tenant's default/kubernetes Service. Its
// cluster IP is the first of the tenant's range, which is the super cluster's own kubernetes
// Service's when the ranges are equal (the allocator's case) and outside the super range
// otherwise: it is never asked for. Pods do not use it (their KUBERNETES_* variables name the
// tenant apiserver, podenv.go), and DNS answers the super copy's IP (dns.go).
func isTenantAPIService(ns, name string) bool {
	return ns == metav1.NamespaceDefault && name == "kubernetes"
}

// withoutRequestedAllocations is svc asking the super cluster for no particular cluster IPs and
// node ports (on an update, ports that had one keep it: the super apiserver fills them in).
func withoutRequestedAllocations(svc *corev1.Service) *corev1.Service {
	out := svc.DeepCopy()
	if out.Spec.ClusterIP != corev1.ClusterIPNone {
		out.Spec.ClusterIP, out.Spec.ClusterIPs = "", nil
	}
	for i := range out.Spec.Ports {
		out.Spec.Ports[i].NodePort = 0
	}
	return out
}

// requestsAllocations reports whether svc asks for particular cluster IPs or node ports.
func requestsAllocations(svc *corev1.Service) bool {
	if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		return true
	}
	return slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.NodePort != 0 })
}

// serviceWriter writes super Services: a create or update that the super cluster refuses as
// invalid while it asks for the tenant's cluster IPs or node ports is written again without
// them, after differ has been told why.
type serviceWriter struct {
	corev1client.ServiceInterface
	differ func(error)
}

// freedAfterDelete is how long a create keeps asking for allocations that are "already
// allocated": the super cluster frees a deleted Service's IP and node ports a moment after the
// delete, and a super Service deleted by hand is recreated at once.
var freedAfterDelete = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}

func (w serviceWriter) Create(ctx context.Context, svc *corev1.Service, opts metav1.CreateOptions) (*corev1.Service, error) {
	out, err := w.ServiceInterface.Create(ctx, svc, opts)
	for _, d := range freedAfterDelete {
		if !allocationRefused(err) || !strings.Contains(err.Error(), "already allocated") || !requestsAllocations(svc) {
			break
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(d):
		}
		out, err = w.ServiceInterface.Create(ctx, svc, opts)
	}
	if allocationRefused(err) && requestsAllocations(svc) {
		w.differ(err)
		out, err = w.ServiceInterface.Create(ctx, withoutRequestedAllocations(svc), opts)
	}
	return out, err
}

func (w serviceWriter) Update(ctx context.Context, svc *corev1.Service, opts metav1.UpdateOptions) (*corev1.Service, error) {
	out, err := w.ServiceInterface.Update(ctx, svc, opts)
	if allocationRefused(err) && requestsAllocations(svc) {
		w.differ(err)
		out, err = w.ServiceInterface.Update(ctx, withoutRequestedAllocations(svc), opts)
	}
	return out, err
}

// allocationRefused reports whether err is the super apiserver refusing a Service's cluster IPs
// or node ports (taken, out of its range), not some other field.
func allocationRefused(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if strings.HasPrefix(c.Field, "spec.clusterIP") || strings.HasSuffix(c.Field, ".nodePort") {
			return true
		}
	}
	return false
}

// serviceDownEqual compares what the down sync owns, ignoring what the super cluster allocates.
func serviceDownEqual(desired, existing *corev1.Service) bool {
	if !stampedMetaEqual(desired, existing) || desired.Spec.Type != existing.Spec.Type ||
		desired.Spec.ExternalName != existing.Spec.ExternalName ||
		desired.Spec.PublishNotReadyAddresses != existing.Spec.PublishNotReadyAddresses ||
		desired.Spec.SessionAffinity != existing.Spec.SessionAffinity ||
		!apiequality.Semantic.DeepEqual(desired.Spec.SessionAffinityConfig, existing.Spec.SessionAffinityConfig) ||
		!apiequality.Semantic.DeepEqual(desired.Spec.Selector, existing.Spec.Selector) ||
		// The tenant apiserver defaults these as the super one does; one the tenant left unset
		// (not applicable to its type) is the super apiserver's to default or drop.
		(desired.Spec.ExternalTrafficPolicy != "" && desired.Spec.ExternalTrafficPolicy != existing.Spec.ExternalTrafficPolicy) ||
		setAndDiffers(desired.Spec.InternalTrafficPolicy, existing.Spec.InternalTrafficPolicy) ||
		setAndDiffers(desired.Spec.IPFamilyPolicy, existing.Spec.IPFamilyPolicy) ||
		!ptr.Equal(desired.Spec.TrafficDistribution, existing.Spec.TrafficDistribution) || // not defaulted
		!slices.Equal(desired.Spec.LoadBalancerSourceRanges, existing.Spec.LoadBalancerSourceRanges) ||
		len(desired.Spec.Ports) != len(existing.Spec.Ports) {
		return false
	}
	for i, p := range desired.Spec.Ports {
		q := existing.Spec.Ports[i]
		p.NodePort, q.NodePort = 0, 0 // allocated: asked for once, then the super cluster's
		if !apiequality.Semantic.DeepEqual(p, q) {
			return false
		}
	}
	return true
}

// setAndDiffers reports whether desired is set and existing is not the same value.
func setAndDiffers[T comparable](desired, existing *T) bool {
	return desired != nil && (existing == nil || *desired != *existing)
}

// mergeService writes desired into a copy of existing, keeping the allocated cluster IPs and
// the node ports of ports that stay; a port new to node ports, or a Service new to cluster IPs
// (ExternalName → ClusterIP), asks for the tenant's.
func mergeService(desired, existing *corev1.Service) *corev1.Service {
	out := existing.DeepCopy()
	mergeMeta(desired, out)
	if out.Spec.ClusterIP == "" {
		out.Spec.ClusterIP, out.Spec.ClusterIPs = desired.Spec.ClusterIP, desired.Spec.ClusterIPs
	}
	nodePorts := map[int32]int32{}
	for _, p := range existing.Spec.Ports {
		nodePorts[p.Port] = p.NodePort
	}
	out.Spec.Type = desired.Spec.Type
	out.Spec.Selector = desired.Spec.Selector
	out.Spec.ExternalName = desired.Spec.ExternalName
	out.Spec.PublishNotReadyAddresses = desired.Spec.PublishNotReadyAddresses
	out.Spec.SessionAffinity, out.Spec.SessionAffinityConfig = desired.Spec.SessionAffinity, desired.Spec.SessionAffinityConfig
	if desired.Spec.ExternalTrafficPolicy != "" {
		out.Spec.ExternalTrafficPolicy = desired.Spec.ExternalTrafficPolicy
	}
	if desired.Spec.InternalTrafficPolicy != nil {
		out.Spec.InternalTrafficPolicy = desired.Spec.InternalTrafficPolicy
	}
	if desired.Spec.IPFamilyPolicy != nil {
		// The IP families and cluster IPs stay the super cluster's: on SingleStack its apiserver
		// drops the secondary ones, on a dual-stack policy it allocates them.
		out.Spec.IPFamilyPolicy = desired.Spec.IPFamilyPolicy
	}
	out.Spec.TrafficDistribution = desired.Spec.TrafficDistribution
	out.Spec.LoadBalancerSourceRanges = desired.Spec.LoadBalancerSourceRanges
	if existing.Spec.Type != corev1.ServiceTypeLoadBalancer || desired.Spec.Type != corev1.ServiceTypeLoadBalancer {
		// Immutable while the Service stays a LoadBalancer (the tenant's is too); set when it
		// becomes one, nil when it stops being one.
		out.Spec.LoadBalancerClass = desired.Spec.LoadBalancerClass
	}
	out.Spec.Ports = nil
	for _, p := range desired.Spec.Ports {
		if np := nodePorts[p.Port]; np != 0 && hasNodePorts(desired.Spec.Type) {
			p.NodePort = np
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
	w := serviceWriter{ServiceInterface: s.super.CoreV1().Services(superNS), differ: func(err error) {
		if t.recorder != nil {
			t.recorder.Eventf(ts, corev1.EventTypeWarning, "ServiceAllocationDiffers",
				"The super cluster cannot give this Service its cluster IPs or node ports and allocates its own, which pods see: %v", err)
		}
	}}
	if err := serviceDown.sync(ctx, s, t, w, st); err != nil {
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
	return inTenant(err)
}
