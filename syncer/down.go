package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// object is what the generic down sync works on: a typed Kubernetes object pointer.
type object interface {
	metav1.Object
	runtime.Object
}

// writer is the part of a typed client (e.g. PodInterface) that the down sync writes with.
type writer[T object] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
	Get(context.Context, string, metav1.GetOptions) (T, error)
}

// errNotOwned is returned by guard for a super object that is not the tenant's.
var errNotOwned = errors.New("exists in the super cluster and is not owned by this tenant")

// guard is the one ownership check in front of every write to an existing super object: the
// object must carry the ownership labels of this tenant and tenant namespace. Every update and
// delete of a super object goes through it.
func guard(t *tenant, tenantNS string, super metav1.Object) error {
	if !mapping.OwnedByTenant(super, t.key, tenantNS) {
		return errNotOwned
	}
	return nil
}

// down describes the down sync of one kind that needs no more than translate-and-compare.
type down[T object] struct {
	kind kind
	// translate returns the desired super object for a tenant object.
	translate func(t *tenant, obj T) T
	// equal reports whether the existing super object already matches desired.
	equal func(desired, existing T) bool
	// merge writes desired into a copy of existing, keeping what the super cluster owns
	// (e.g. a Service's cluster IP), and returns the object to update.
	merge func(desired, existing T) T
	// refused, when set, is given merged, an update of st.super the super cluster refused
	// (superRefused) with refusal, before the down sync tells the tenant of it. It reports whether
	// it dealt with the refusal itself, and then the sync's error (the pod's added tolerations:
	// takeBackTolerations, podplacement.go).
	refused func(ctx context.Context, s *Syncer, t *tenant, w writer[T], st state[T], merged T, refusal error) (bool, error)
	// created, when set, is given the tenant object and the super object the super cluster has
	// just created for it, once per creation (a pod's cut nameserver or search line is told
	// then: recordDNSOmitted, dns.go).
	created func(ctx context.Context, t *tenant, tenantObj, super T)
}

// state is what the down sync knows about one key: the tenant object (if it exists and should
// be synced) and the super object (if it exists).
type state[T object] struct {
	tenantNS  string
	tenant    T
	hasTenant bool // the tenant object exists and is wanted in the super cluster
	super     T
	hasSuper  bool
}

// sync makes the super object match the tenant object: create, update, or delete it. It never
// writes a super object that guard rejects; for one that exists with the tenant object's name it
// records an event on the tenant object instead.
func (d down[T]) sync(ctx context.Context, s *Syncer, t *tenant, w writer[T], st state[T]) error {
	logger := klog.FromContext(ctx)
	if st.hasSuper {
		if err := guard(t, st.tenantNS, st.super); err != nil {
			if st.hasTenant {
				s.recordNotOwned(t, st.tenant, d.kind, st.super)
			}
			return nil
		}
	}
	switch {
	case !st.hasTenant:
		if !st.hasSuper || st.super.GetDeletionTimestamp() != nil {
			return nil
		}
		logger.V(2).Info("Deleting super object of a gone tenant object", "superObject", klog.KObj(st.super))
		return deleteSuper(ctx, t, w, st.tenantNS, st.super, nil)
	case st.hasSuper && mapping.TenantUID(st.super) != st.tenant.GetUID():
		// Made from an earlier tenant object of the same name: replace it.
		if st.super.GetDeletionTimestamp() != nil {
			return fmt.Errorf("waiting for super object %s of an earlier tenant object to go", klog.KObj(st.super))
		}
		return deleteSuper(ctx, t, w, st.tenantNS, st.super, nil)
	}
	desired := d.translate(t, st.tenant)
	if !st.hasSuper {
		if d.kind != kindNamespace {
			if t.namespaceTerminating(st.tenantNS) {
				logger.V(4).Info("Not creating a super object in a terminating namespace", "superObject", klog.KObj(desired))
				return nil
			}
			if err := s.ensureSuperNamespace(ctx, t, st.tenantNS); err != nil {
				if errors.Is(err, errNotOwned) {
					// Retried (the foreign namespace may go), but nothing is created in it.
					s.recordNotOwned(t, st.tenant, kindNamespace, &metav1.ObjectMeta{Name: mapping.SuperNamespace(t.key, st.tenantNS)})
				}
				return err
			}
		}
		logger.V(2).Info("Creating super object", "superObject", klog.KObj(desired))
		_, err := w.Create(ctx, desired, metav1.CreateOptions{})
		if err == nil && d.created != nil {
			d.created(ctx, t, st.tenant, desired)
		}
		if !apierrors.IsAlreadyExists(err) {
			s.recordRejected(t, st.tenant, d.kind, err)
			return err
		}
		// The cache sees owned objects only: an object without our labels is invisible to
		// it. Look at the live one to tell a foreign object from cache lag.
		live, getErr := w.Get(ctx, desired.GetName(), metav1.GetOptions{})
		if getErr == nil && guard(t, st.tenantNS, live) != nil {
			s.recordNotOwned(t, st.tenant, d.kind, live)
			return nil
		}
		if getErr == nil && mapping.TenantUID(live) == st.tenant.GetUID() {
			// Created from this very tenant object by an earlier reconcile the cache has not
			// caught up with (an event of another object queued the key meanwhile): nothing
			// to retry, its add event queues the key again.
			return nil
		}
		return fmt.Errorf("super object %s appeared meanwhile: %w", klog.KObj(desired), err)
	}
	if d.equal(desired, st.super) {
		return nil
	}
	logger.V(2).Info("Updating super object", "superObject", klog.KObj(st.super))
	merged := d.merge(desired, st.super)
	_, err := w.Update(ctx, merged, metav1.UpdateOptions{})
	if superRefused(err) && d.refused != nil {
		if dealt, err := d.refused(ctx, s, t, w, st, merged, err); dealt {
			return err
		}
	}
	s.recordRejected(t, st.tenant, d.kind, err)
	return err
}

// superRefused reports whether the super cluster refused a write for good (its admission or
// validation), which the tenant is told about; a resize or ephemeral container so refused does
// not hold up the pod's other changes or its status (podresize.go, podephemeral.go). A create
// in a super namespace that is being deleted is no such refusal (NamespaceTerminating, a 403 of
// the namespace lifecycle admission): it says nothing about the object, and it passes once the
// namespace is gone, for a tenant namespace deleted and made again under its name. It is retried
// with back-off, and told as a sync error if it lasts (syncerror.go).
func superRefused(err error) bool {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return false
	}
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || tolerationsRefused(err)
}

// namespaceTerminating reports whether tenant namespace ns is being deleted, in the tenant
// cache. Nothing is created in its super namespace then: the syncer deletes that namespace as
// the tenant's starts terminating (namespaceDown), and the tenant's namespace controller is
// deleting what is left in it, as the tenant apiserver refuses anything new there. A sync that
// would create the super object of something in it does nothing: creating it would be refused
// by the super cluster, and the tenant told of a refusal on an object about to go.
func (t *tenant) namespaceTerminating(ns string) bool {
	if ns == "" || t.namespaces == nil {
		return false
	}
	n, err := t.namespaces.Get(ns)
	return err == nil && n.DeletionTimestamp != nil
}

// tolerationsRefused reports whether err is the super cluster's PodTolerationRestriction
// admission plugin refusing a pod's tolerations, which it does with a plain error: clients get
// a 500 without a reason, as for a failure that may pass, though it is a refusal of the pod's
// content like a 403 (k8s.io/kubernetes/plugin/pkg/admission/podtolerationrestriction).
func tolerationsRefused(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != http.StatusInternalServerError {
		return false
	}
	msg := status.Status().Message
	return strings.Contains(msg, "pod tolerations (possibly merged with namespace default tolerations) conflict with its") &&
		strings.Contains(msg, "whitelist")
}

// recordRejected tells the tenant, with an event on its object, why the super cluster refused
// the object (its policy, e.g. Pod Security, or validation); retries follow with back-off.
func (s *Syncer) recordRejected(t *tenant, tenantObj runtime.Object, k kind, err error) {
	if t.recorder == nil || !superRefused(err) {
		return
	}
	t.recorder.Eventf(tenantObj, corev1.EventTypeWarning, "SuperClusterRejected",
		"The super cluster refused the %s: %v", k, err)
}

// deleteSuper deletes a super object of the tenant, only if guard allows, with a UID
// precondition so that a different object created meanwhile under the name survives.
func deleteSuper[T object](ctx context.Context, t *tenant, w writer[T], tenantNS string, super T, grace *int64) error {
	if err := guard(t, tenantNS, super); err != nil {
		return err
	}
	uid := super.GetUID()
	err := w.Delete(ctx, super.GetName(), metav1.DeleteOptions{
		Preconditions:      &metav1.Preconditions{UID: &uid},
		GracePeriodSeconds: grace,
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by something we will look at on its own event
	}
	return err
}

// recordNotOwned records, on the tenant object, that its super counterpart is someone else's.
func (s *Syncer) recordNotOwned(t *tenant, tenantObj runtime.Object, k kind, super metav1.Object) {
	if t.recorder == nil {
		return
	}
	name := super.GetName()
	if ns := super.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	t.recorder.Eventf(tenantObj, corev1.EventTypeWarning, "SuperObjectNotOwned",
		"%s %s %s; the syncer leaves it alone", k, name, errNotOwned)
}

// lookup returns (obj, true) or (zero, false) for a lister Get, and the error unless NotFound.
func lookup[T any](obj T, err error) (T, bool, error) {
	var zero T
	if apierrors.IsNotFound(err) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, err
	}
	return obj, true, nil
}

// superOwnedLabels are set by the super cluster itself; the down sync neither compares nor
// removes them.
var superOwnedLabels = map[string]bool{"kubernetes.io/metadata.name": true}

// superOwnedAnnotation reports whether key is of the annotations the super cluster's own
// controllers put on an object: on a claim, the PV binder's (pv.kubernetes.io/bind-completed,
// bound-by-controller), the provisioners' and the scheduler's (volume.kubernetes.io/selected-node,
// volume.beta.kubernetes.io/storage-provisioner, ...). The down sync neither compares nor removes
// those the tenant object does not name (one it names is the tenant's): taking them away undoes
// a claim's binding, and the binder binds it again while it stays Pending.
func superOwnedAnnotation(key string) bool {
	return strings.HasPrefix(key, "pv.kubernetes.io/") || strings.HasPrefix(key, "volume.kubernetes.io/") ||
		strings.HasPrefix(key, "volume.beta.kubernetes.io/")
}

// stampedMetaEqual compares the metadata the down sync sets: labels and annotations.
func stampedMetaEqual(desired, existing metav1.Object) bool {
	return mapsEqual(desired.GetLabels(), superLeft(existing.GetLabels(), desired.GetLabels(), superKeptLabel, false)) &&
		mapsEqual(desired.GetAnnotations(), superLeft(existing.GetAnnotations(), desired.GetAnnotations(), superKeptAnnotation, false))
}

// superKeptLabel reports whether the down sync leaves label k of a super object alone: the super
// cluster owns it.
func superKeptLabel(k string, _ map[string]string) bool { return superOwnedLabels[k] }

// superKeptAnnotation reports whether the down sync leaves annotation k of a super object alone:
// the super cluster owns it, or the syncer wrote it outside the down sync (refusalAnnotations,
// podrefused.go), and desired does not name it.
func superKeptAnnotation(k string, desired map[string]string) bool {
	_, named := desired[k]
	return !named && (superOwnedAnnotation(k) || slices.Contains(refusalAnnotations, k))
}

// superLeft is the part of existing that kept(k, desired) reports (kept true) or the rest (kept
// false).
func superLeft(existing, desired map[string]string, kept func(string, map[string]string) bool, want bool) map[string]string {
	out := make(map[string]string, len(existing))
	for k, v := range existing {
		if kept(k, desired) == want {
			out[k] = v
		}
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// mergeMeta writes the desired labels and annotations onto existing, keeping the labels the
// super cluster owns and its annotations that desired does not name.
func mergeMeta(desired, existing metav1.Object) {
	existing.SetLabels(withKept(desired.GetLabels(), existing.GetLabels(), superKeptLabel))
	existing.SetAnnotations(withKept(desired.GetAnnotations(), existing.GetAnnotations(), superKeptAnnotation))
}

// withKept is desired with the entries of existing that kept reports (nil when both are empty).
func withKept(desired, existing map[string]string, kept func(string, map[string]string) bool) map[string]string {
	out := maps.Clone(desired)
	for k, v := range superLeft(existing, desired, kept, true) {
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}
