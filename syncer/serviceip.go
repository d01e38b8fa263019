package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/internal/serviceip"
	"github.com/vnest-dev/vnest/syncer/kubeletproxy"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// The Service IP allocator: tenant apiservers ask it for the cluster IPs of a Service before
// they create it (package internal/serviceip has the protocol, apiserver/serviceipadmission the
// asking side), so that a tenant Service's cluster IPs are its super Service's.
//
// It creates the super Service first, as a reservation (ownership labels of the tenant and
// tenant namespace, serviceip.AnnotationReservedAt, no tenant UID on create), and answers the
// IPs the super cluster allocated. syncService adopts the reservation when the tenant Service
// with those IPs appears, and deletes it when none does within reservationGrace. It is served on the kubelet
// proxy's listener, which identifies the calling tenant apiserver by its client certificate.

// reservationGrace is how long a reservation may wait for its tenant Service: the tenant
// apiserver creates it right after admission, but the later admission steps (webhooks time out
// after 30 s at most) may still refuse it.
const reservationGrace = 2 * time.Minute

var servicesResource = schema.GroupResource{Resource: "services"}

// serveServiceIP answers a serviceip.Request of tenant pt's apiserver.
func (s *Syncer) serveServiceIP(w http.ResponseWriter, r *http.Request, pt kubeletproxy.Tenant) {
	var resp serviceip.Response
	err := func() error {
		if r.Method != http.MethodPost {
			return apierrors.NewMethodNotSupported(servicesResource, r.Method)
		}
		var req serviceip.Request
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			return apierrors.NewBadRequest("decoding the request: " + err.Error())
		}
		t := s.tenant(pt.ClusterKey)
		if t == nil {
			return apierrors.NewServiceUnavailable("the syncer does not serve tenant " + pt.ClusterKey + " (yet)")
		}
		var err error
		resp, err = s.allocateServiceIP(r.Context(), t, req)
		return err
	}()
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := apiStatus(err)
		klog.FromContext(r.Context()).V(2).Info("Refused a Service IP allocation", "tenant", pt.ClusterKey, "err", status.Message)
		w.WriteHeader(int(status.Code))
		_ = json.NewEncoder(w).Encode(status)
		return
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// apiStatus is err as a metav1.Status; errors that are not API errors are 500s.
func apiStatus(err error) *metav1.Status {
	var api apierrors.APIStatus
	if errors.As(err, &api) && api.Status().Code != 0 {
		st := api.Status()
		return &st
	}
	st := apierrors.NewInternalError(err).Status()
	return &st
}

// allocateServiceIP creates (or finds) the super Service for req and returns its cluster IPs.
func (s *Syncer) allocateServiceIP(ctx context.Context, t *tenant, req serviceip.Request) (serviceip.Response, error) {
	svc := &req.Service
	ns, name := svc.Namespace, svc.Name
	if ns == "" || name == "" || !serviceip.NeedsClusterIP(&svc.Spec) {
		return serviceip.Response{}, apierrors.NewBadRequest("want a namespaced Service that needs cluster IPs (not ExternalName, not headless)")
	}
	logger := klog.FromContext(ctx).WithValues("tenant", t.key, "service", klog.KRef(ns, name))
	if req.UID == "" {
		// Admission runs before the tenant apiserver's own already-exists check: a create of a
		// name that is taken must not cost the existing Service its super counterpart.
		if _, err := t.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			return serviceip.Response{}, apierrors.NewAlreadyExists(servicesResource, name)
		} else if !apierrors.IsNotFound(err) {
			return serviceip.Response{}, err
		}
	}
	if err := s.ensureSuperNamespace(ctx, t, ns); err != nil {
		return serviceip.Response{}, err
	}
	client := s.super.CoreV1().Services(mapping.SuperNamespace(t.key, ns))
	desired := reservation(svc, t.owner, req.UID, time.Now())
	for range 3 {
		live, err := client.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			created, err := client.Create(ctx, desired, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return serviceip.Response{}, fmt.Errorf("the super cluster refused the Service: %w", err)
			}
			logger.V(2).Info("Reserved cluster IPs in the super cluster", "clusterIPs", created.Spec.ClusterIPs)
			return answer(created, svc), nil
		}
		if err != nil {
			return serviceip.Response{}, err
		}
		if guard(t, ns, live) != nil {
			return serviceip.Response{}, apierrors.NewConflict(servicesResource, name,
				fmt.Errorf("the super Service %s/%s %s", live.Namespace, name, errNotOwned))
		}
		if reusable(live, svc, req.UID) {
			return answer(live, svc), nil
		}
		if req.UID != "" && mapping.TenantUID(live) == req.UID && !serviceip.NeedsClusterIP(&live.Spec) {
			// The Service being updated from ExternalName: changed in place, so that the
			// down sync, which would recreate a deleted one at once, has nothing to race with.
			updated, err := client.Update(ctx, toClusterIPType(desired, live), metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				continue
			}
			if err != nil {
				return serviceip.Response{}, fmt.Errorf("the super cluster refused the Service: %w", err)
			}
			logger.V(2).Info("Reserved cluster IPs in the super cluster for an update", "clusterIPs", updated.Spec.ClusterIPs)
			return answer(updated, svc), nil
		}
		// Made from an earlier tenant Service of this name, or for other IPs: it goes, and a
		// new one is made.
		logger.V(2).Info("Replacing super Service for a new allocation", "superService", klog.KObj(live))
		if err := deleteSuper(ctx, t, client, ns, live, nil); err != nil {
			return serviceip.Response{}, err
		}
	}
	return serviceip.Response{}, apierrors.NewConflict(servicesResource, name, errors.New("the super Service kept changing; try again"))
}

// reservation is the super Service the allocator creates for the tenant Service svc: what the
// down sync would create, with the cluster IPs the user asked for and a reservation time; the
// tenant UID is set on an update of an existing Service and empty on create.
func reservation(svc *corev1.Service, owner mapping.Owner, uid types.UID, now time.Time) *corev1.Service {
	tenantSvc := svc.DeepCopy()
	tenantSvc.UID = uid
	out := translateService(tenantSvc, owner)
	if ips := requestedIPs(svc); len(ips) > 0 {
		out.Spec.ClusterIP, out.Spec.ClusterIPs = ips[0], ips
	}
	if hasNodePorts(svc.Spec.Type) {
		for i := range out.Spec.Ports { // node ports the user chose are requested too
			out.Spec.Ports[i].NodePort = svc.Spec.Ports[i].NodePort
		}
	}
	out.Annotations[serviceip.AnnotationReservedAt] = now.UTC().Format(time.RFC3339)
	return out
}

// toClusterIPType is the ExternalName super Service live changed to desired's type, ports and
// requested cluster IPs, with desired's metadata (the reservation annotation among them).
func toClusterIPType(desired, live *corev1.Service) *corev1.Service {
	out := mergeService(desired, live)
	out.Spec.ClusterIP, out.Spec.ClusterIPs = desired.Spec.ClusterIP, desired.Spec.ClusterIPs
	out.Spec.IPFamilyPolicy, out.Spec.IPFamilies = desired.Spec.IPFamilyPolicy, desired.Spec.IPFamilies
	return out
}

// requestedIPs are the cluster IPs the user set on svc; nil when the allocator picks.
func requestedIPs(svc *corev1.Service) []string {
	ips := slices.DeleteFunc(slices.Clone(svc.Spec.ClusterIPs), func(ip string) bool { return ip == "" })
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	return ips
}

// reusable reports whether the existing super Service live (owned by the tenant namespace)
// answers a request for svc: it has cluster IPs, the ones asked for if any, and svc's type (so
// node ports where svc wants them), and it is either an
// unadopted reservation (a retried create) or was made from the Service being updated.
func reusable(live, svc *corev1.Service, uid types.UID) bool {
	if !serviceip.NeedsClusterIP(&live.Spec) || len(live.Spec.ClusterIPs) == 0 || typeOf(live) != typeOf(svc) {
		return false
	}
	if want := requestedIPs(svc); len(want) > 0 && !slices.Equal(want, live.Spec.ClusterIPs[:min(len(want), len(live.Spec.ClusterIPs))]) {
		return false
	}
	_, reserved := reservedAt(live)
	if uid == "" {
		return reserved && mapping.TenantUID(live) == ""
	}
	return mapping.TenantUID(live) == uid || (reserved && mapping.TenantUID(live) == "")
}

// answer is the allocation of the super Service svc, node ports matched to the request's ports
// by port number and protocol (the super Service has the same ports).
func answer(svc *corev1.Service, req *corev1.Service) serviceip.Response {
	resp := serviceip.Response{ClusterIPs: svc.Spec.ClusterIPs, IPFamilies: svc.Spec.IPFamilies, IPFamilyPolicy: svc.Spec.IPFamilyPolicy}
	if !hasNodePorts(req.Spec.Type) {
		return resp
	}
	for _, p := range req.Spec.Ports {
		var np int32
		for _, q := range svc.Spec.Ports {
			if q.Port == p.Port && q.Protocol == p.Protocol {
				np = q.NodePort
			}
		}
		resp.NodePorts = append(resp.NodePorts, np)
	}
	return resp
}

func typeOf(svc *corev1.Service) corev1.ServiceType {
	if svc.Spec.Type == "" {
		return corev1.ServiceTypeClusterIP
	}
	return svc.Spec.Type
}

func hasNodePorts(t corev1.ServiceType) bool {
	return t == corev1.ServiceTypeNodePort || t == corev1.ServiceTypeLoadBalancer
}

// reservedAt is the reservation time of a super Service made by the allocator and not yet
// adopted; ok is false for any other Service. An unreadable time counts as long ago.
func reservedAt(super *corev1.Service) (at time.Time, ok bool) {
	v, ok := super.Annotations[serviceip.AnnotationReservedAt]
	if !ok {
		return time.Time{}, false
	}
	at, _ = time.Parse(time.RFC3339, v)
	return at, true
}

// adoptReservation decides what the down sync of a Service sees of a reservation ss. For the
// tenant Service it was made for (same cluster IPs, and the same UID when it has one) it is a
// copy carrying ts's UID, so that the down sync updates it in place, which drops the
// reservation annotation, instead of replacing it. Within the grace period a reservation is
// otherwise kept as it is (keep): its tenant Service may still be on its way (a create, or an
// update from ExternalName, that admission has just passed). After that it is an ordinary super
// Service: deleted without a tenant Service, replaced or updated with one. Any other super
// Service comes back as it is. The caller has checked ownership (guard).
func adoptReservation(ts, ss *corev1.Service, hasTenant bool, now time.Time) (out *corev1.Service, keep bool) {
	at, ok := reservedAt(ss)
	if !ok {
		return ss, false
	}
	uid := mapping.TenantUID(ss)
	if hasTenant && len(ss.Spec.ClusterIPs) > 0 && slices.Equal(ts.Spec.ClusterIPs, ss.Spec.ClusterIPs) && (uid == "" || uid == ts.UID) {
		out = ss.DeepCopy()
		out.Annotations[ownership.AnnotationTenantUID] = string(ts.UID)
		return out, false
	}
	return ss, now.Sub(at) < reservationGrace
}
