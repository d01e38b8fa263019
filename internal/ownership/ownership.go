package ownership

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReservedPrefix starts every label and annotation key vnest owns. Tenants
// must not be able to set keys with it on super objects: the syncer strips
// it from tenant-supplied metadata.
const ReservedPrefix = "tenancy.vnest.dev/"

const (
	// LabelClusterKey carries the owning tenant's status.clusterKey on every
	// super-cluster object created for a tenant (its super namespaces, the
	// objects in them, the manager's control-plane objects). A label, so
	// that a tenant's objects can be listed with a selector.
	LabelClusterKey = ReservedPrefix + "cluster-key"
	// LabelTenantNamespace is the tenant namespace a super object came from
	// (on super namespaces and the objects in them).
	LabelTenantNamespace = ReservedPrefix + "tenant-namespace"
	// AnnotationTenantUID is the UID of the tenant object a super object
	// was made from; a recreated tenant object has a new UID.
	AnnotationTenantUID = ReservedPrefix + "tenant-uid"
	// AnnotationVirtualCluster is "<namespace>/<name>" of the owning
	// VirtualCluster, for humans reading a super object.
	AnnotationVirtualCluster = ReservedPrefix + "virtual-cluster"
	// AnnotationTenantName is the name of the tenant object a cluster-scoped
	// super object was made from when the super name is per-tenant
	// ("<clusterKey>-<name>", e.g. a RuntimeClass).
	AnnotationTenantName = ReservedPrefix + "tenant-name"
)

// Labels of objects the syncer copies up from the super cluster into tenants.
const (
	// LabelPublished, with the value "true", is how an operator publishes a
	// cluster-scoped super object (a StorageClass or a PriorityClass) to
	// every tenant: the syncer copies it into each tenant and removes the
	// copies once the label or the object is gone.
	LabelPublished = ReservedPrefix + "published"
	// LabelMirror, with the value "true", marks a tenant object the syncer
	// made as a copy of a super object (a published StorageClass or
	// PriorityClass, the PersistentVolume a tenant claim is bound to). The
	// syncer updates and deletes only tenant objects that carry it.
	LabelMirror = ReservedPrefix + "mirror"
	// LabelVirtualNode, with the value "true", marks a tenant Node the syncer
	// publishes for a super node that runs the tenant's pods; it is deleted
	// once none of them runs there.
	LabelVirtualNode = ReservedPrefix + "virtual-node"
	// AnnotationSuperLabels, on a virtual Node, lists (comma-separated, sorted)
	// the label keys the syncer copied from the super node; the Node's other
	// labels are the tenant's own.
	AnnotationSuperLabels = ReservedPrefix + "super-labels"
	// AnnotationSuperTaints, on a virtual Node, lists (comma-separated,
	// sorted, each key:Effect) the taints the syncer copied from the super
	// node; the Node's other taints are the tenant's own.
	AnnotationSuperTaints = ReservedPrefix + "super-taints"
)

// Labels of the objects the vnest manager itself creates next to a
// VirtualCluster, in its namespace: the control-plane Deployment and
// Service, the PKI and kubeconfig Secrets.
const (
	// LabelControlPlane carries the cluster key of the tenant whose control
	// plane the object belongs to. It is deliberately not LabelClusterKey:
	// these objects are not synced tenant objects, and the syncer, which
	// watches everything with LabelClusterKey, must not take them for any.
	LabelControlPlane = ReservedPrefix + "control-plane"
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	// ManagedByManager is the value of LabelManagedBy on the manager's objects.
	ManagedByManager = "vnest-manager"
)

// OwnedBy reports whether obj carries the ownership label of the tenant with
// clusterKey. An empty clusterKey owns nothing.
func OwnedBy(obj metav1.Object, clusterKey string) bool {
	return clusterKey != "" && obj.GetLabels()[LabelClusterKey] == clusterKey
}

// IsControlPlaneObject reports whether obj is one of the manager's objects
// for the control plane of the tenant with clusterKey.
func IsControlPlaneObject(obj metav1.Object, clusterKey string) bool {
	return clusterKey != "" && obj.GetLabels()[LabelControlPlane] == clusterKey
}

// IsTenantNamespace reports whether ns is one of the tenant's super
// namespaces: its name starts with the tenant's prefix ("<clusterKey>-")
// AND it carries the tenant's ownership label. Both are required, so a
// namespace someone created with a look-alike name, or labelled by hand,
// is never taken for the tenant's.
func IsTenantNamespace(ns metav1.Object, clusterKey string) bool {
	return OwnedBy(ns, clusterKey) && strings.HasPrefix(ns.GetName(), NamespacePrefix(clusterKey))
}

// IsTenantClusterScoped reports whether a cluster-scoped super object (a
// RuntimeClass) is one the syncer made for the tenant with clusterKey: its
// name starts with the tenant's prefix, it carries the tenant's ownership
// label, and its tenant-namespace label is present and empty (a super
// namespace has the tenant namespace there).
func IsTenantClusterScoped(obj metav1.Object, clusterKey string) bool {
	ns, has := obj.GetLabels()[LabelTenantNamespace]
	return OwnedBy(obj, clusterKey) && has && ns == "" && obj.GetNamespace() == "" &&
		strings.HasPrefix(obj.GetName(), NamespacePrefix(clusterKey))
}

// NamespacePrefix starts the name of every super namespace of the tenant
// with clusterKey (status.superNamespacePrefix).
func NamespacePrefix(clusterKey string) string {
	return clusterKey + "-"
}
