package syncer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Pod Security admission labels the syncer sets on super namespaces from spec.policy.
const (
	labelPodSecurityEnforce = "pod-security.kubernetes.io/enforce"
)

// namespaceDown: tenant namespace ns ↦ super namespace K-ns, deleted when the tenant namespace
// goes or starts terminating (its pods then go with it and the tenant's namespace controller
// sees them gone).
var namespaceDown = down[*corev1.Namespace]{
	kind: kindNamespace,
	translate: func(t *tenant, ns *corev1.Namespace) *corev1.Namespace {
		return translateNamespace(ns, t.owner, t.settings.Load().policy)
	},
	equal: func(desired, existing *corev1.Namespace) bool {
		return stampedMetaEqual(desired, existing)
	},
	merge: func(desired, existing *corev1.Namespace) *corev1.Namespace {
		out := existing.DeepCopy()
		mergeMeta(desired, out)
		return out
	},
}

// translateNamespace is the super namespace for a tenant namespace: ownership only (tenant
// labels stay in the tenant; they could select super-cluster policies) plus the Pod Security
// level the VirtualCluster's policy asks for.
func translateNamespace(ns *corev1.Namespace, owner mapping.Owner, policy v1alpha1.PolicySpec) *corev1.Namespace {
	meta := mapping.SuperNamespaceMeta(ns, owner)
	meta.Labels[labelPodSecurityEnforce] = podSecurityLevel(policy)
	return &corev1.Namespace{ObjectMeta: meta}
}

// podSecurityLevel is the Pod Security level super namespaces enforce under policy.
func podSecurityLevel(policy v1alpha1.PolicySpec) string {
	if policy.PodSecurityLevel == "" {
		return string(v1alpha1.PodSecurityBaseline)
	}
	return string(policy.PodSecurityLevel)
}

// podSecurityApplied reports whether super namespace ns enforces the Pod Security level of
// policy: its sync after a change of the policy went through.
func podSecurityApplied(ns *corev1.Namespace, policy v1alpha1.PolicySpec) bool {
	return ns.Labels[labelPodSecurityEnforce] == podSecurityLevel(policy)
}

// syncNamespace syncs tenant namespace name down, and reports whether it created the super
// namespace.
func (s *Syncer) syncNamespace(ctx context.Context, t *tenant, name string) (created bool, err error) {
	tn, hasTenant, err := lookup(t.namespaces.Get(name))
	if err != nil {
		return false, err
	}
	hasTenant = hasTenant && tn.DeletionTimestamp == nil
	sn, hasSuper, err := lookup(s.superNS.Get(mapping.SuperNamespace(t.key, name)))
	if err != nil {
		return false, err
	}
	w := &namespaceWriter{NamespaceInterface: s.super.CoreV1().Namespaces()}
	err = namespaceDown.sync(ctx, s, t, w, state[*corev1.Namespace]{tenantNS: name, tenant: tn, hasTenant: hasTenant, super: sn, hasSuper: hasSuper})
	if w.created {
		s.retryWaitingIn(t, name)
	}
	return w.created, err
}

// retryWaitingIn queues now the keys of tenant namespace ns that wait for a retry, once its
// super namespace has been created. A tenant namespace deleted and made again under its name
// gets its super namespace only when the old one is gone; until then every create in it is
// refused (NamespaceTerminating, superRefused), and each object's retries back off up to a
// minute apart, which would leave its pods Pending that long after the namespace is there.
func (s *Syncer) retryWaitingIn(t *tenant, ns string) {
	for _, k := range allKinds {
		objs, err := t.index[k].ByIndex(cache.NamespaceIndex, ns)
		if err != nil {
			continue // no namespace index: a cluster-scoped kind
		}
		for _, obj := range objs {
			m, err := metaOf(obj)
			if err != nil {
				continue
			}
			if key := tenantKey(k, m); s.queue.NumRequeues(t.key, key) > 0 {
				s.queue.Add(t.key, key)
			}
		}
	}
}

// namespaceWriter writes super namespaces and remembers whether a create succeeded.
type namespaceWriter struct {
	corev1client.NamespaceInterface
	created bool
}

func (w *namespaceWriter) Create(ctx context.Context, ns *corev1.Namespace, opts metav1.CreateOptions) (*corev1.Namespace, error) {
	out, err := w.NamespaceInterface.Create(ctx, ns, opts)
	w.created = w.created || err == nil
	return out, err
}

// ensureSuperNamespace creates the super namespace of tenant namespace ns if the syncer's cache
// does not have it yet, so that the first object of a namespace need not wait for a retry. It
// fails, with an error wrapping errNotOwned, when the super namespace is someone else's: the
// tenant's objects must not be created in it.
func (s *Syncer) ensureSuperNamespace(ctx context.Context, t *tenant, ns string) error {
	if ns == "" {
		return nil
	}
	name := mapping.SuperNamespace(t.key, ns)
	if cached, err := s.superNS.Get(name); err == nil {
		// The cache holds every tenant's namespaces, and two tenant namespaces, of one tenant or
		// of two, can map to one name (mapping.SuperNamespace): only the labels tell whose it is.
		if err := guard(t, ns, cached); err != nil {
			return fmt.Errorf("super namespace %s %w", name, err)
		}
		return nil
	}
	created, err := s.syncNamespace(ctx, t, ns)
	switch {
	case err != nil && !apierrors.IsAlreadyExists(err):
		return err
	case created:
		return nil // ours, with our labels
	}
	// The down sync of a namespace that exists without our labels (invisible to the cache)
	// records an event and succeeds: only the live namespace tells ours, not cached yet, from
	// a foreign one.
	live, err := s.super.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil // nothing foreign there; a create in it fails on its own
	case err != nil:
		return fmt.Errorf("super namespace %s: %w", name, err)
	}
	if err := guard(t, ns, live); err != nil {
		return fmt.Errorf("super namespace %s %w", name, err)
	}
	return nil
}
