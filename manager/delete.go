package manager

import (
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// cleanupStep is one part of a tenant's deletion. done is false while
// something is still going away.
type cleanupStep struct {
	what string
	run  func(context.Context, *scope) (done bool, err error)
}

// reconcileDelete removes, in order, the control plane (so nothing writes
// into etcd any more), the tenant's super namespaces, its etcd keys, user
// and role, and its Secrets; only then does the finalizer go. A step that
// fails blocks the ones after it and is retried; the condition and a
// Warning event say what is stuck.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	vc := s.vc
	r.resyncFailures.reset(client.ObjectKeyFromObject(vc))
	if !controllerutil.ContainsFinalizer(vc, Finalizer) {
		return ctrl.Result{}, nil
	}
	// The identity is a function of the VirtualCluster (setIdentity): one deleted before its
	// first status write (a conflict with the delete itself) may have a control plane and etcd
	// keys all the same, found under the same key.
	setIdentity(vc)
	steps := []cleanupStep{
		{"stopping the control plane", r.deleteControlPlane},
		{"deleting the tenant's super-cluster namespaces", r.deleteSuperNamespaces},
		{"deleting the tenant's super-cluster RuntimeClasses", r.deleteSuperRuntimeClasses},
		{"deleting the tenant's etcd keys, user and role", r.deleteEtcdData},
		{"deleting the tenant's Secrets", r.deleteSecrets},
	}
	for _, step := range steps {
		done, err := step.run(ctx, s)
		if err != nil {
			pe := asPhaseError(err, v1alpha1.ReasonDeleting)
			msg := fmt.Sprintf("%s failed: %s (to give up and leave it behind, remove the finalizer %s by hand)", step.what, pe.message, Finalizer)
			setDeleting(vc, msg)
			r.eventf(vc, corev1.EventTypeWarning, pe.reason, "Delete", "%s", msg)
			if pe.retryAfter == 0 {
				return ctrl.Result{}, err
			}
			return ctrl.Result{RequeueAfter: pe.retryAfter}, nil
		}
		if !done {
			setDeleting(vc, "waiting for "+step.what)
			return ctrl.Result{RequeueAfter: retryStarting}, nil
		}
	}
	if err := r.patchMetadata(ctx, vc, func(vc *v1alpha1.VirtualCluster) { controllerutil.RemoveFinalizer(vc, Finalizer) }); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.gone = true
	klog.FromContext(ctx).Info("Virtual cluster cleaned up", "clusterKey", vc.Status.ClusterKey)
	return ctrl.Result{}, nil
}

func (r *Reconciler) deleteControlPlane(ctx context.Context, s *scope) (bool, error) {
	prov, err := r.provisionerFor(s.vc)
	if err != nil {
		// Not run by this manager (a local provisioner turned off since):
		// a control plane it never started is not its to stop.
		return true, nil
	}
	return prov.Teardown(ctx, s.vc)
}

// deleteSuperNamespaces deletes every super namespace of the tenant: those
// with the tenant's name prefix AND ownership label. Done once they are gone.
func (r *Reconciler) deleteSuperNamespaces(ctx context.Context, s *scope) (bool, error) {
	key := s.vc.Status.ClusterKey
	var list corev1.NamespaceList
	if err := r.APIReader.List(ctx, &list, client.MatchingLabels{ownership.LabelClusterKey: key}); err != nil {
		return false, fmt.Errorf("listing the tenant's namespaces: %w", err)
	}
	left := 0
	for i := range list.Items {
		ns := &list.Items[i]
		if !ownership.IsTenantNamespace(ns, key) {
			continue
		}
		left++
		if ns.DeletionTimestamp.IsZero() {
			if err := r.Client.Delete(ctx, ns); client.IgnoreNotFound(err) != nil {
				return false, fmt.Errorf("deleting namespace %s: %w", ns.Name, err)
			}
		}
	}
	return left == 0, nil
}

// deleteSuperRuntimeClasses deletes the cluster-scoped RuntimeClasses the
// syncer made for the tenant (ownership.IsTenantClusterScoped). Done once
// they are gone.
func (r *Reconciler) deleteSuperRuntimeClasses(ctx context.Context, s *scope) (bool, error) {
	key := s.vc.Status.ClusterKey
	var list nodev1.RuntimeClassList
	if err := r.APIReader.List(ctx, &list, client.MatchingLabels{ownership.LabelClusterKey: key}); err != nil {
		return false, fmt.Errorf("listing the tenant's RuntimeClasses: %w", err)
	}
	left := 0
	for i := range list.Items {
		rc := &list.Items[i]
		if !ownership.IsTenantClusterScoped(rc, key) {
			continue
		}
		left++
		if err := r.Client.Delete(ctx, rc); client.IgnoreNotFound(err) != nil {
			return false, fmt.Errorf("deleting RuntimeClass %s: %w", rc.Name, err)
		}
	}
	return left == 0, nil
}

// deleteEtcdData deletes the tenant's key range, user and role. A tenant
// whose etcd was never touched (annotationEtcdInitialized missing: its
// storage never resolved) has nothing there.
func (r *Reconciler) deleteEtcdData(ctx context.Context, s *scope) (bool, error) {
	if s.vc.Annotations[annotationEtcdInitialized] == "" || s.vc.Status.EtcdPrefix == "" {
		return true, nil
	}
	creds, err := r.storageCreds(ctx, s.vc)
	if apierrors.IsNotFound(err) {
		return r.leaveEtcdData(ctx, s)
	}
	if err != nil {
		return false, err
	}
	cli, release, err := r.etcdClient(creds)
	if err != nil {
		return false, err
	}
	defer release()
	if err := deleteTenantKeys(ctx, cli, creds, s.vc.Status.EtcdPrefix); err != nil {
		return false, err
	}
	return true, removeTenantAccess(ctx, cli, creds, EtcdUser(s.vc.Status.ClusterKey))
}

// eventEtcdDataLeftBehind is the reason of the Warning event of leaveEtcdData.
const eventEtcdDataLeftBehind = "EtcdDataLeftBehind"

// leaveEtcdData gives up cleaning the tenant's etcd when the credentials
// Secret of spec.storage.etcd is gone, as it is when the VirtualCluster's
// namespace is deleted: the namespace controller deletes the Secret with
// everything else, and nothing can create it again in a terminating
// namespace. Without it nothing reaches that etcd, and waiting would hold
// the deletion for ever. A Warning event says what is left where, for an
// etcd admin to delete. The annotation that says etcd needs cleaning goes,
// so later passes of the deletion skip etcd and do not say it again.
// (A Secret that exists but does not work, or an etcd that cannot be
// reached, is retried as any failed step.)
func (r *Reconciler) leaveEtcdData(ctx context.Context, s *scope) (bool, error) {
	vc := s.vc
	if err := r.scopePatchMetadata(ctx, s, func(vc *v1alpha1.VirtualCluster) { delete(vc.Annotations, annotationEtcdInitialized) }); err != nil {
		return false, err
	}
	keys, _ := tenantKeyRange(vc.Status.EtcdPrefix)
	user := EtcdUser(vc.Status.ClusterKey)
	secret := vc.Namespace + "/" + vc.Spec.Storage.Etcd.CredentialsSecretRef.Name
	endpoints := vc.Spec.Storage.Etcd.Endpoints
	klog.FromContext(ctx).Info("Leaving the tenant's etcd data behind: its credentials Secret is gone",
		"secret", secret, "etcdPrefix", keys, "endpoints", endpoints)
	// The endpoints last: the note is cut to fit an Event, and they can fill it.
	r.eventf(vc, corev1.EventTypeWarning, eventEtcdDataLeftBehind, "Delete",
		"the tenant's etcd keys under %s (and, with etcd auth on, its etcd user and role %s) are left in etcd: "+
			"the etcd credentials Secret %s (spec.storage.etcd.credentialsSecretRef) is gone, so nothing can reach that etcd; "+
			"delete them there (etcdctl del --prefix %s; etcdctl user delete %s; etcdctl role delete %s); its endpoints: %v",
		keys, user, secret, keys, user, user, endpoints)
	return true, nil
}

// deleteSecrets deletes the PKI and kubeconfig Secrets if they are the
// tenant's. Done once they are gone.
func (r *Reconciler) deleteSecrets(ctx context.Context, s *scope) (bool, error) {
	done := true
	for _, name := range []string{s.vc.PKISecretName(), s.vc.KubeconfigSecretName()} {
		gone, err := deleteOwned(ctx, r.APIReader, r.Client, s.vc, client.ObjectKey{Namespace: s.vc.Namespace, Name: name}, &corev1.Secret{})
		if err != nil {
			return false, err
		}
		done = done && gone
	}
	return done, nil
}

// deleteOwned reads the object at key into obj and deletes it if it is vc's (ownsObject), with
// a UID precondition in case it was replaced since it was read (a Conflict: read again next
// time). gone is true when vc has no such object: none, or someone else's of that name, which
// is left alone and does not hold up vc's deletion.
func deleteOwned(ctx context.Context, reader client.Reader, c client.Client, vc *v1alpha1.VirtualCluster,
	key client.ObjectKey, obj client.Object, opts ...client.DeleteOption) (gone bool, err error) {
	kind := reflect.TypeOf(obj).Elem().Name() // Secret, Deployment, Service
	err = reader.Get(ctx, key, obj)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading %s %s: %w", kind, key, err)
	case !ownsObject(vc, obj):
		return true, nil
	case !obj.GetDeletionTimestamp().IsZero():
		return false, nil
	}
	err = c.Delete(ctx, obj, append(opts, client.Preconditions{UID: ptr.To(obj.GetUID())})...)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return false, fmt.Errorf("deleting %s %s: %w", kind, key, err)
	}
	return false, nil
}
