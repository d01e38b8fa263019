package serviceip

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// Path is where the syncer serves the allocator, on the listener of its kubelet proxy, which
// already identifies tenant apiservers by their kubelet client certificate.
const Path = "/vnest/v1/allocate-service-ip"

// AnnotationReservedAt is set, to the RFC 3339 time of the reservation, on a super Service the
// allocator created before its tenant Service existed; the tenant-UID annotation is empty
// then. The syncer adopts the reservation once the tenant Service with the same cluster IPs
// appears (it then drops this annotation and sets the UID), and deletes it when none appears
// within its grace period (the tenant create failed after admission).
const AnnotationReservedAt = ownership.ReservedPrefix + "cluster-ip-reserved-at"

// Request asks for the ClusterIPs of a tenant Service.
type Request struct {
	// Service is the tenant Service as admitted (namespace, name, labels, annotations, spec).
	// Spec.ClusterIPs the user set are requested as they are; empty ones are allocated.
	Service corev1.Service `json:"service"`
	// UID is the UID of the existing tenant Service on an update that needs cluster IPs (a
	// change of type from ExternalName); empty on create.
	UID types.UID `json:"uid,omitempty"`
}

// Response is the allocation: the super Service's cluster IPs and IP families, which the tenant
// Service takes as they are, and its node ports (NodePorts[i] for Spec.Ports[i] of the request;
// 0 or absent when the port has none), which the tenant takes for ports without one. Errors are
// answered as a metav1.Status with an HTTP error code.
type Response struct {
	ClusterIPs     []string               `json:"clusterIPs"`
	IPFamilies     []corev1.IPFamily      `json:"ipFamilies,omitempty"`
	IPFamilyPolicy *corev1.IPFamilyPolicy `json:"ipFamilyPolicy,omitempty"`
	NodePorts      []int32                `json:"nodePorts,omitempty"`
}

// NeedsClusterIP reports whether a Service of this spec gets cluster IPs from an allocator:
// not ExternalName and not headless.
func NeedsClusterIP(spec *corev1.ServiceSpec) bool {
	return spec.Type != corev1.ServiceTypeExternalName && spec.ClusterIP != corev1.ClusterIPNone
}
