package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vnest-dev/vnest/internal/ownership"
)

const (
	// MaxNamespaceLength is the longest namespace name Kubernetes accepts (a DNS label).
	MaxNamespaceLength = 63
	// hashChars is how many hex digits of sha256 end a truncated super namespace name.
	hashChars = 10
)

// Owner identifies the tenant a super object belongs to.
type Owner struct {
	// ClusterKey is the VirtualCluster's status.clusterKey.
	ClusterKey string
	// VirtualCluster is "<namespace>/<name>" of the VirtualCluster, for humans.
	VirtualCluster string
}

// SuperNamespace is the super-cluster namespace holding tenant namespace ns of the tenant with
// clusterKey: "<clusterKey>-<ns>". When that is longer than 63 characters it keeps a readable
// prefix and ends with "-" and 10 hex digits of sha256("<clusterKey>/<ns>"), so it is
// deterministic, within limits, and still starts with the tenant's prefix. Two tenant namespaces
// can share one: a name kept as it is that reads like another's hash-truncated one, and, across
// tenants, "<key>-<h>-<ns>" when one key is another's followed by "-<h>" (a VirtualCluster named
// after the 10-character key of one whose name part is one letter). Only the ownership labels
// (OwnedByTenant) tell whose a super namespace is.
func SuperNamespace(clusterKey, ns string) string {
	return prefixedName(clusterKey, ns, MaxNamespaceLength)
}

// SuperClusterScopedName is the name of the cluster-scoped super object for the cluster-scoped
// tenant object name (a RuntimeClass): "<clusterKey>-<name>", hash-truncated as SuperNamespace
// is when longer than 253 characters (a DNS subdomain). Tenants never share a name this way.
func SuperClusterScopedName(clusterKey, name string) string {
	return prefixedName(clusterKey, name, MaxSubdomainLength)
}

// MaxSubdomainLength is the longest name of most cluster-scoped kinds (a DNS subdomain).
const MaxSubdomainLength = 253

// prefixedName is "<clusterKey>-<name>" when it is at most max characters, else a readable
// prefix of it ending with "-" and 10 hex digits of sha256("<clusterKey>/<name>").
func prefixedName(clusterKey, name string, max int) string {
	full := ownership.NamespacePrefix(clusterKey) + name
	if len(full) <= max {
		return full
	}
	sum := sha256.Sum256([]byte(clusterKey + "/" + name))
	suffix := "-" + hex.EncodeToString(sum[:])[:hashChars]
	prefix := strings.TrimRight(full[:max-len(suffix)], "-.")
	return prefix + suffix
}

// TenantNamespace is the tenant namespace a super object of the tenant with clusterKey came from,
// read from its ownership labels. ok is false when the object is not the tenant's. It works for
// super namespaces and for the objects in them alike.
func TenantNamespace(obj metav1.Object, clusterKey string) (ns string, ok bool) {
	if !ownership.OwnedBy(obj, clusterKey) {
		return "", false
	}
	ns, ok = obj.GetLabels()[ownership.LabelTenantNamespace]
	return ns, ok && ns != ""
}

// OwnedByTenant reports whether the super object obj belongs to the tenant object identified by
// (clusterKey, tenant namespace): the cluster-key and tenant-namespace labels must both match.
// The syncer writes a super object only when this holds. An empty tenant namespace stands for a
// cluster-scoped tenant object (ownership.IsTenantClusterScoped), so a super namespace or a
// namespaced object never passes for one.
func OwnedByTenant(obj metav1.Object, clusterKey, tenantNamespace string) bool {
	if tenantNamespace == "" {
		return ownership.IsTenantClusterScoped(obj, clusterKey)
	}
	got, ok := TenantNamespace(obj, clusterKey)
	return ok && got == tenantNamespace
}

// TenantName is the name of the tenant object a cluster-scoped super object with a per-tenant
// name was made from (SuperClusterScopedName), read from its annotation; ok is false when obj is
// not one of the tenant's cluster-scoped objects.
func TenantName(obj metav1.Object, clusterKey string) (name string, ok bool) {
	if !OwnedByTenant(obj, clusterKey, "") {
		return "", false
	}
	name = obj.GetAnnotations()[ownership.AnnotationTenantName]
	return name, name != ""
}

// TenantUID is the UID of the tenant object the super object was made from.
func TenantUID(obj metav1.Object) types.UID {
	return types.UID(obj.GetAnnotations()[ownership.AnnotationTenantUID])
}

// StripReserved returns a copy of m without the keys under vnest's reserved prefix (or nil when
// nothing is left), so a tenant cannot forge ownership or other vnest metadata on super objects.
func StripReserved(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if IsReserved(k) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(m))
		}
		out[k] = v
	}
	return out
}

// IsReserved reports whether a label or annotation key is vnest's own. Keys with a subdomain of
// the reserved domain ("x.tenancy.vnest.dev/…") are reserved too.
func IsReserved(key string) bool {
	prefix, _, found := strings.Cut(key, "/")
	if !found {
		return false
	}
	domain := strings.TrimSuffix(ownership.ReservedPrefix, "/")
	return prefix == domain || strings.HasSuffix(prefix, "."+domain)
}

// SuperMeta is the metadata of the super object for a tenant object with the given metadata: the
// same name, the super namespace (empty for cluster-scoped objects), the tenant's labels and
// annotations without reserved keys, plus the ownership stamp. UID, resource version, owner
// references, finalizers and managed fields stay behind: they mean nothing in the super cluster.
func SuperMeta(tenant metav1.Object, owner Owner) metav1.ObjectMeta {
	tenantNS := tenant.GetNamespace()
	meta := metav1.ObjectMeta{
		Name:        tenant.GetName(),
		Labels:      StripReserved(tenant.GetLabels()),
		Annotations: StripReserved(tenant.GetAnnotations()),
	}
	if tenantNS != "" {
		meta.Namespace = SuperNamespace(owner.ClusterKey, tenantNS)
	}
	Stamp(&meta, owner, tenantNS, tenant.GetUID())
	return meta
}

// SuperClusterScopedMeta is SuperMeta for a cluster-scoped tenant object whose super object
// gets a per-tenant name (SuperClusterScopedName), with the tenant name in an annotation.
func SuperClusterScopedMeta(tenant metav1.Object, owner Owner) metav1.ObjectMeta {
	meta := SuperMeta(tenant, owner)
	meta.Name = SuperClusterScopedName(owner.ClusterKey, tenant.GetName())
	meta.Annotations[ownership.AnnotationTenantName] = tenant.GetName()
	return meta
}

// Stamp puts the ownership labels and annotations on meta: the cluster key and tenant namespace
// as labels (selectable), the tenant UID and VirtualCluster as annotations.
func Stamp(meta metav1.Object, owner Owner, tenantNamespace string, tenantUID types.UID) {
	labels := meta.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ownership.LabelClusterKey] = owner.ClusterKey
	labels[ownership.LabelTenantNamespace] = tenantNamespace
	meta.SetLabels(labels)
	annotations := meta.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[ownership.AnnotationTenantUID] = string(tenantUID)
	if owner.VirtualCluster != "" {
		annotations[ownership.AnnotationVirtualCluster] = owner.VirtualCluster
	}
	meta.SetAnnotations(annotations)
}

// SuperNamespaceMeta is the metadata of the super namespace for tenant namespace ns: labelled
// with the tenant namespace it holds (which is how the syncer maps back; the name may be
// truncated).
func SuperNamespaceMeta(ns metav1.Object, owner Owner) metav1.ObjectMeta {
	meta := metav1.ObjectMeta{Name: SuperNamespace(owner.ClusterKey, ns.GetName())}
	Stamp(&meta, owner, ns.GetName(), ns.GetUID())
	return meta
}
