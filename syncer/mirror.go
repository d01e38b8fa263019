package syncer

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Mirrors: cluster-scoped tenant objects the syncer copies up from the super cluster — the
// StorageClasses and PriorityClasses the operator publishes (label ownership.LabelPublished),
// and the PersistentVolumes tenant claims are bound to. Every copy carries
// ownership.LabelMirror; the syncer creates, updates and deletes only tenant objects with it, and
// leaves a tenant's own object of the same name alone (with an event on it saying so).

// isMirror reports whether a tenant object is one the syncer made.
func isMirror(obj metav1.Object) bool {
	return obj.GetLabels()[ownership.LabelMirror] == "true"
}

// mirrorMeta is the metadata of the tenant copy of a super object: same name, the super
// object's labels and annotations without vnest's reserved keys or kubectl's bookkeeping, plus
// the mirror label.
func mirrorMeta(super metav1.Object) metav1.ObjectMeta {
	labels := mapping.StripReserved(super.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ownership.LabelMirror] = "true"
	annotations := mapping.StripReserved(super.GetAnnotations())
	delete(annotations, corev1.LastAppliedConfigAnnotation)
	if len(annotations) == 0 {
		annotations = nil
	}
	return metav1.ObjectMeta{Name: super.GetName(), Labels: labels, Annotations: annotations}
}

// mirrorMetaEqual compares the metadata mirrorMeta sets.
func mirrorMetaEqual(desired, existing metav1.Object) bool {
	return mapsEqual(desired.GetLabels(), existing.GetLabels()) && mapsEqual(desired.GetAnnotations(), existing.GetAnnotations())
}

// mirror describes the up sync of one mirrored kind.
type mirror[T object] struct {
	kind kind
	// equal reports whether the tenant copy already matches desired.
	equal func(desired, existing T) bool
	// immutableChanged reports whether desired differs from the tenant copy in a field the
	// tenant apiserver does not let change: the copy is then deleted and created again.
	immutableChanged func(desired, existing T) bool
	// merge writes desired into a copy of existing and returns the object to update.
	merge func(desired, existing T) T
	// finalizers are the ones the tenant's admission adds and no tenant controller removes
	// (the tenant runs no PV protection controller): the syncer drops them before deleting.
	finalizers []string
}

// sync makes the tenant object match desired (want false: the copy must go). It returns the
// tenant copy as it is after the writes, if there is one. A tenant object without the mirror
// label is never written; when the super side wants a copy of that name, the tenant object gets
// an event.
func (m mirror[T]) sync(ctx context.Context, t *tenant, w writer[T], desired T, want bool, existing T, has bool) (T, bool, error) {
	var zero T
	logger := klog.FromContext(ctx)
	if has && !isMirror(existing) {
		if want && t.recorder != nil {
			t.recorder.Eventf(existing, corev1.EventTypeWarning, "MirrorNameTaken",
				"The super cluster has a %s %s for this tenant, but this one is the tenant's own; the syncer leaves it and does not copy the super cluster's", m.kind, existing.GetName())
		}
		logger.V(2).Info("Tenant object is not a mirror; leaving it", "tenantObject", klog.KObj(existing))
		return zero, false, nil
	}
	switch {
	case !want:
		if !has {
			return zero, false, nil
		}
		logger.V(2).Info("Deleting mirror without super counterpart", "tenantObject", klog.KObj(existing))
		return zero, false, m.delete(ctx, w, existing)
	case !has:
		logger.V(2).Info("Creating mirror", "tenantObject", klog.KObj(desired))
		created, err := w.Create(ctx, desired, metav1.CreateOptions{})
		if err != nil {
			return zero, false, fmt.Errorf("creating %s %s in the tenant: %w", m.kind, desired.GetName(), err)
		}
		return created, true, nil
	case existing.GetDeletionTimestamp() != nil:
		// Someone deleted the copy; let it go, then make it again.
		if err := m.delete(ctx, w, existing); err != nil {
			return zero, false, err
		}
		return zero, false, fmt.Errorf("waiting for the deleted mirror %s %s to go", m.kind, existing.GetName())
	case m.immutableChanged(desired, existing):
		logger.V(2).Info("Replacing mirror whose immutable fields changed", "tenantObject", klog.KObj(existing))
		if err := m.delete(ctx, w, existing); err != nil {
			return zero, false, err
		}
		return zero, false, fmt.Errorf("replacing mirror %s %s", m.kind, existing.GetName())
	case m.equal(desired, existing):
		return existing, true, nil
	}
	logger.V(2).Info("Updating mirror", "tenantObject", klog.KObj(existing))
	updated, err := w.Update(ctx, m.merge(desired, existing), metav1.UpdateOptions{})
	if err != nil {
		return zero, false, err
	}
	return updated, true, nil
}

// delete removes a mirror (UID precondition), dropping m.finalizers first.
func (m mirror[T]) delete(ctx context.Context, w writer[T], existing T) error {
	if !isMirror(existing) {
		return nil // the one check in front of every delete, like guard for super objects
	}
	kept := slices.DeleteFunc(slices.Clone(existing.GetFinalizers()), func(f string) bool { return slices.Contains(m.finalizers, f) })
	if len(kept) != len(existing.GetFinalizers()) {
		up := existing.DeepCopyObject().(T)
		up.SetFinalizers(kept)
		updated, err := w.Update(ctx, up, metav1.UpdateOptions{})
		if err != nil {
			return ignoreNotFound(err)
		}
		existing = updated
	}
	if existing.GetDeletionTimestamp() != nil {
		return nil
	}
	uid := existing.GetUID()
	return ignoreNotFound(w.Delete(ctx, existing.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}))
}

// upKindInformers are the tenant informers of the kinds synced up only (besides nodes).
func upKindInformers(f informers.SharedInformerFactory) map[kind]cache.SharedIndexInformer {
	return map[kind]cache.SharedIndexInformer{
		kindPV:            f.Core().V1().PersistentVolumes().Informer(),
		kindStorageClass:  f.Storage().V1().StorageClasses().Informer(),
		kindPriorityClass: f.Scheduling().V1().PriorityClasses().Informer(),
	}
}

// wireUpSources sets up the super informers of the mirrored kinds: PersistentVolumes (all of
// them; they carry no ownership) and the published StorageClasses and PriorityClasses. A
// watch filtered by the published label reports an object that loses the label as deleted.
func (s *Syncer) wireUpSources() {
	pvs := s.nodeFactory.Core().V1().PersistentVolumes()
	_, _ = pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.enqueueSuperPV,
		UpdateFunc: func(old, obj any) { s.enqueueSuperPV(old); s.enqueueSuperPV(obj) },
		DeleteFunc: s.enqueueSuperPV,
	})
	s.superPVs = pvs.Lister()

	s.published = informers.NewSharedInformerFactoryWithOptions(s.super, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = ownership.LabelPublished + "=true"
	}))
	scs := s.published.Storage().V1().StorageClasses()
	pcs := s.published.Scheduling().V1().PriorityClasses()
	for k, inf := range map[kind]cache.SharedIndexInformer{kindStorageClass: scs.Informer(), kindPriorityClass: pcs.Informer()} {
		_, _ = inf.AddEventHandler(s.publishedHandler(k))
	}
	s.superSCs, s.superPCs = scs.Lister(), pcs.Lister()
}

// publishedHandler queues a changed published object for every tenant.
func (s *Syncer) publishedHandler(k kind) cache.ResourceEventHandler {
	handle := func(obj any) {
		m, err := metaOf(obj)
		if err != nil {
			return
		}
		for _, t := range s.servingTenants() {
			s.queue.Add(t.key, objKey{Kind: k, Name: m.GetName()})
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
		DeleteFunc: handle,
	}
}

// publishedStore is the store of the published super objects of kind k, or nil.
func (s *Syncer) publishedStore(k kind) cache.Store {
	switch k {
	case kindStorageClass:
		return s.published.Storage().V1().StorageClasses().Informer().GetStore()
	case kindPriorityClass:
		return s.published.Scheduling().V1().PriorityClasses().Informer().GetStore()
	}
	return nil
}

// patrolPublished queues every published super object of kind k for tenant t and returns the
// drift: published objects without a tenant copy, and tenant copies of nothing published.
// tenantObjs are the tenant's objects of kind k by key.
func (s *Syncer) patrolPublished(t *tenant, k kind, tenantObjs map[objKey]metav1.Object) int {
	store := s.publishedStore(k)
	if store == nil {
		return 0
	}
	drift := 0
	published := map[objKey]bool{}
	for _, obj := range store.List() {
		m, err := metaOf(obj)
		if err != nil {
			continue
		}
		key := tenantKey(k, m)
		published[key] = true
		s.queue.Add(t.key, key)
		if _, ok := tenantObjs[key]; !ok {
			drift++ // (a tenant's own object of the name is a decision, not drift)
		}
	}
	for key, tm := range tenantObjs {
		if isMirror(tm) && !published[key] {
			drift++
		}
	}
	return drift
}
