package syncer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// RuntimeClasses: down, as cluster-scoped super RuntimeClasses of a per-tenant name,
// "<clusterKey>-<name>" (mapping.SuperClusterScopedName; the tenant name is in an annotation),
// with the tenant's handler, overhead and scheduling. A super pod names its tenant pod's class by
// that name (superRuntimeClassName, from translatePod). The tenant apiserver's RuntimeClass
// admission already put the class's overhead, node selector and tolerations on the tenant pod;
// the super cluster's admission finds the same overhead on the super class (it refuses a pod
// whose overhead differs) and merges the same scheduling again, which changes nothing.
//
// A tenant can so name any runtime handler the super nodes are configured with: that is the
// operator's to restrict (docs/tenant-pods.md). A pod whose class is missing in the tenant (it
// was deleted after the pod was created) is refused with a condition and an event
// (runtimeClassGate) instead of failing in the super cluster's admission.

// reasonRuntimeClass is the PodScheduled=False reason of a pod whose RuntimeClass cannot be used.
const reasonRuntimeClass = "RuntimeClassUnavailable"

// translateRuntimeClass is the super RuntimeClass for a tenant RuntimeClass.
func translateRuntimeClass(rc *nodev1.RuntimeClass, owner mapping.Owner) *nodev1.RuntimeClass {
	c := rc.DeepCopy()
	return &nodev1.RuntimeClass{
		ObjectMeta: mapping.SuperClusterScopedMeta(rc, owner),
		Handler:    c.Handler,
		Overhead:   c.Overhead,
		Scheduling: c.Scheduling,
	}
}

// superRuntimeClassName is the runtimeClassName of the super pod of a tenant pod naming the
// tenant class name (nil: none).
func superRuntimeClassName(clusterKey string, name *string) *string {
	if name == nil || *name == "" {
		return name
	}
	return ptr.To(mapping.SuperClusterScopedName(clusterKey, *name))
}

var runtimeClassDown = down[*nodev1.RuntimeClass]{
	kind: kindRuntimeClass,
	translate: func(t *tenant, rc *nodev1.RuntimeClass) *nodev1.RuntimeClass {
		return translateRuntimeClass(rc, t.owner)
	},
	equal: func(desired, existing *nodev1.RuntimeClass) bool {
		return stampedMetaEqual(desired, existing) && desired.Handler == existing.Handler &&
			apiequality.Semantic.DeepEqual(desired.Overhead, existing.Overhead) &&
			apiequality.Semantic.DeepEqual(desired.Scheduling, existing.Scheduling)
	},
	merge: func(desired, existing *nodev1.RuntimeClass) *nodev1.RuntimeClass {
		out := existing.DeepCopy() // the handler is immutable, and the tenant's cannot change either
		mergeMeta(desired, out)
		out.Overhead, out.Scheduling = desired.Overhead, desired.Scheduling
		return out
	},
}

func (s *Syncer) syncRuntimeClass(ctx context.Context, t *tenant, name string) error {
	rc, hasTenant, err := lookup(nodelisters.NewRuntimeClassLister(t.index[kindRuntimeClass]).Get(name))
	if err != nil {
		return err
	}
	sc, hasSuper, err := lookup(nodelisters.NewRuntimeClassLister(s.superIndex[kindRuntimeClass]).Get(mapping.SuperClusterScopedName(t.key, name)))
	if err != nil {
		return err
	}
	if hasSuper {
		// Another class of this tenant whose name looks like this one's truncated name: its own.
		if other, ok := mapping.TenantName(sc, t.key); ok && other != name {
			if hasTenant {
				s.recordNotOwned(t, rc, kindRuntimeClass, sc)
			}
			return nil
		}
	}
	return runtimeClassDown.sync(ctx, s, t, s.super.NodeV1().RuntimeClasses(),
		state[*nodev1.RuntimeClass]{tenant: rc, hasTenant: hasTenant, super: sc, hasSuper: hasSuper})
}

// runtimeClassGate is asked before a tenant pod's super pod is created. For a pod naming a
// RuntimeClass it returns why the pod cannot go down ("" when it can): the class is missing in
// the tenant, or its super class is not this tenant's. It syncs the class first, so a pod
// created right after its class does not wait for the class's own turn in the queue.
func (s *Syncer) runtimeClassGate(ctx context.Context, t *tenant, tp *corev1.Pod) (string, error) {
	if tp.Spec.RuntimeClassName == nil || *tp.Spec.RuntimeClassName == "" {
		return "", nil
	}
	name := *tp.Spec.RuntimeClassName
	rc, has, err := lookup(nodelisters.NewRuntimeClassLister(t.index[kindRuntimeClass]).Get(name))
	if err != nil {
		return "", err
	}
	if !has {
		return fmt.Sprintf("RuntimeClass %q does not exist in this virtual cluster; create it, or recreate the pod without it", name), nil
	}
	superName := mapping.SuperClusterScopedName(t.key, name)
	if sc, err := nodelisters.NewRuntimeClassLister(s.superIndex[kindRuntimeClass]).Get(superName); err == nil && ownsRuntimeClass(t, rc, sc) {
		return "", nil
	}
	if err := s.syncRuntimeClass(ctx, t, name); err != nil {
		return "", fmt.Errorf("syncing RuntimeClass %s: %w", name, err)
	}
	sc, err := s.super.NodeV1().RuntimeClasses().Get(ctx, superName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading super RuntimeClass %s: %w", superName, err)
	}
	if !ownsRuntimeClass(t, rc, sc) {
		return fmt.Sprintf("the super cluster's RuntimeClass %s for RuntimeClass %q is not this virtual cluster's", superName, name), nil
	}
	return "", nil
}

// ownsRuntimeClass reports whether super class sc was made from tenant class rc.
func ownsRuntimeClass(t *tenant, rc, sc *nodev1.RuntimeClass) bool {
	n, ok := mapping.TenantName(sc, t.key)
	return ok && n == rc.Name && mapping.TenantUID(sc) == rc.UID
}
