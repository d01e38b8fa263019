package manager

import (
	"net/url"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// Finalizer keeps a VirtualCluster until its control plane, super objects,
// etcd keys and Secrets are gone.
const Finalizer = "tenancy.vnest.dev/cleanup"

// Keys of the kubeconfig Secret.
const (
	// KubeconfigKey is the tenant admin kubeconfig for the endpoint in
	// status.endpoint, reachable from the manager's host.
	KubeconfigKey = "kubeconfig"
	// InClusterKubeconfigKey is the same identity for clients inside the
	// super cluster (the Service DNS name); cluster provisioner only.
	InClusterKubeconfigKey = "kubeconfig-in-cluster"
)

// annotationEtcdInitialized marks a VirtualCluster whose etcd access was
// (maybe partly) set up, so deletion knows it must clean etcd even when
// setup never finished. A VirtualCluster rejected before that point (say,
// its credentials Secret never existed) is deleted without touching etcd,
// and so is one whose credentials Secret went before it (leaveEtcdData
// removes the annotation).
const annotationEtcdInitialized = ownership.ReservedPrefix + "etcd-initialized"

// EtcdPrefixRoot is the parent of every tenant's etcd prefix.
const EtcdPrefixRoot = "/vnest/tenants/"

// EtcdPrefix is the etcd key prefix of the tenant with clusterKey. Keys of
// the tenant are "<prefix>/<resource>/..."; the tenant's etcd role covers
// exactly the range below "<prefix>/" (see tenantKeyRange).
func EtcdPrefix(clusterKey string) string {
	return EtcdPrefixRoot + clusterKey
}

// EtcdUser is the etcd user (and role) of the tenant: the CommonName of its
// etcd client certificate, which etcd maps to the user when auth is on.
func EtcdUser(clusterKey string) string {
	return "vnest-tenant-" + clusterKey
}

// ControlPlaneName names the Deployment and Service of the cluster provisioner.
func ControlPlaneName(vc *v1alpha1.VirtualCluster) string {
	return vc.Name + "-apiserver"
}

// tenantKeyRange is the etcd key range [start, end) the tenant owns: every
// key below "<prefix>/". The trailing slash matters: cluster keys are not
// prefix-free ("v-12345678" is a prefix of "v-12345678-9abcdef0"), so a
// range on the bare prefix would reach into another tenant's keys.
func tenantKeyRange(prefix string) (start, end string) {
	start = prefix + "/"
	return start, rangeEnd(start)
}

// rangeEnd is the smallest key greater than every key starting with prefix
// (etcd's "prefix end"): the prefix with its last byte that is not 0xff
// incremented and everything after it dropped. A prefix of only 0xff bytes
// (or an empty one) has no such key; etcd spells "to the end" as "\x00".
func rangeEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	return "\x00"
}

// labelsFor are the labels of every object the manager creates for vc.
func labelsFor(vc *v1alpha1.VirtualCluster) map[string]string {
	return map[string]string{
		ownership.LabelManagedBy:      ownership.ManagedByManager,
		ownership.LabelControlPlane:   vc.Status.ClusterKey,
		"app.kubernetes.io/instance":  vc.Name,
		"app.kubernetes.io/part-of":   "vnest",
		"app.kubernetes.io/component": "tenant-control-plane",
	}
}

// endpointPort is the port of an https URL, 0 when there is none.
func endpointPort(endpoint string) int {
	u, err := url.Parse(endpoint)
	if err != nil || u.Port() == "" {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// ownsObject reports whether obj (a Secret, the control-plane Deployment or
// Service) is one the manager made for vc: it carries vc's control-plane
// label, or vc is its controller (which also covers Secrets written before
// the label existed).
func ownsObject(vc *v1alpha1.VirtualCluster, obj metav1.Object) bool {
	return ownership.IsControlPlaneObject(obj, vc.Status.ClusterKey) || metav1.IsControlledBy(obj, vc)
}
