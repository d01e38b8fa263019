package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// reconcileStorage resolves the tenant's etcd and, with etcd auth on, gives
// the tenant a user and role limited to its key range.
func (r *Reconciler) reconcileStorage(ctx context.Context, s *scope) error {
	creds, err := r.storageCreds(ctx, s.vc)
	if err != nil {
		return err
	}
	cli, release, err := r.etcdClient(creds)
	if err != nil {
		return err
	}
	s.storage, s.etcd, s.releaseEtcd = creds, cli, release
	auth, err := authEnabled(ctx, cli, creds)
	if err != nil {
		return err
	}
	if auth {
		if why := etcdClientIssuable(creds); why != "" {
			return failure(v1alpha1.ReasonCredentialsInvalid, "%s", why)
		}
	}
	// From here on etcd gets written to (the role, the control plane's
	// keys): deletion must clean it up even if setup stops half-way.
	if s.vc.Annotations[annotationEtcdInitialized] == "" {
		if err := r.scopePatchMetadata(ctx, s, func(vc *v1alpha1.VirtualCluster) {
			metav1.SetMetaDataAnnotation(&vc.ObjectMeta, annotationEtcdInitialized, "true")
		}); err != nil {
			return err
		}
	}
	if auth {
		return grantTenantAccess(ctx, cli, creds, EtcdUser(s.vc.Status.ClusterKey), s.vc.Status.EtcdPrefix)
	}
	return nil
}

// storageCreds are the admin credentials of vc's etcd: the manager's
// default, or those of spec.storage.etcd's Secret.
func (r *Reconciler) storageCreds(ctx context.Context, vc *v1alpha1.VirtualCluster) (*etcdCreds, error) {
	if vc.Spec.Storage == nil || vc.Spec.Storage.Etcd == nil {
		if r.defaultStorage == nil {
			return nil, failure(v1alpha1.ReasonCredentialsInvalid,
				"spec.storage is empty, which means the manager's default etcd, but this manager has none (--etcd-servers): set spec.storage.etcd")
		}
		return r.defaultStorage, nil
	}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: vc.Namespace, Name: vc.Spec.Storage.Etcd.CredentialsSecretRef.Name}, secret)
	if apierrors.IsNotFound(err) {
		// The NotFound too: a deletion does not wait for a Secret that is gone (deleteEtcdData).
		_, missing := credsFromSecret(vc.Spec.Storage.Etcd, vc.Namespace, nil)
		return nil, errors.Join(missing, err)
	}
	if err != nil {
		return nil, transient(fmt.Errorf("reading the etcd credentials Secret: %w", err))
	}
	return credsFromSecret(vc.Spec.Storage.Etcd, vc.Namespace, secret)
}

// etcdClient returns a client for creds and how to let go of it: the
// default storage's client is kept for the life of the manager, others are
// dialled per reconcile.
func (r *Reconciler) etcdClient(creds *etcdCreds) (*clientv3.Client, func(), error) {
	if creds != r.defaultStorage {
		cli, err := dialEtcd(creds)
		if err != nil {
			return nil, nil, err
		}
		return cli, func() { cli.Close() }, nil
	}
	r.etcdMu.Lock()
	defer r.etcdMu.Unlock()
	if r.defaultEtcd == nil {
		cli, err := dialEtcd(creds)
		if err != nil {
			return nil, nil, err
		}
		r.defaultEtcd = cli
	}
	return r.defaultEtcd, func() {}, nil
}

// reconcileEndpoint asks the provisioner where the control plane is reached.
func (r *Reconciler) reconcileEndpoint(ctx context.Context, s *scope) error {
	prov, err := r.provisionerFor(s.vc)
	if err != nil {
		return err
	}
	ep, err := prov.Endpoint(ctx, s.vc)
	if err != nil {
		return err
	}
	s.prov, s.endpoint = prov, ep
	s.vc.Status.Endpoint = ep.URL
	return nil
}

// reconcilePKI creates the PKI Secret once and keeps it: only a serving
// certificate whose names changed (or any certificate close to expiry) is
// reissued, by the same CA.
func (r *Reconciler) reconcilePKI(ctx context.Context, s *scope) error {
	req := pkiRequest{
		Serving:  servingSpec(s.vc, s.endpoint.Names),
		EtcdUser: EtcdUser(s.vc.Status.ClusterKey),
		Etcd:     s.storage,
	}
	data, err := r.applySecret(ctx, s.vc, s.vc.PKISecretName(), func(existing map[string][]byte) (map[string][]byte, error) {
		return buildTenantPKI(existing, req)
	})
	if err != nil {
		return err
	}
	s.pki = data
	return nil
}

// reconcileControlPlane runs the control plane and checks it answers.
func (r *Reconciler) reconcileControlPlane(ctx context.Context, s *scope) error {
	t := tenant{VC: s.vc, EtcdServers: s.storage.Endpoints, PKISecret: s.vc.PKISecretName(), PKI: s.pki, Endpoint: s.endpoint, ExtraArgs: r.tenantArgs}
	starting, err := s.prov.Ensure(ctx, t)
	if err != nil {
		return err
	}
	if err := r.checkReady(ctx, s.endpoint.URL, adminFrom(s.pki)); err != nil {
		detail := err.Error()
		if d, ok := s.prov.(diagnoser); ok {
			detail += " (" + d.Diagnose(ctx, s.vc) + ")"
		}
		if !starting && meta.IsStatusConditionTrue(s.vc.Status.Conditions, v1alpha1.ConditionControlPlaneReady) {
			// It was ready and was not restarted: worth a Warning, not a quiet
			// wait, and transient (a running tenant stays Running until the
			// failures run past the threshold).
			return &phaseError{
				reason:     v1alpha1.ReasonControlPlaneUnhealthy,
				message:    fmt.Sprintf("the tenant apiserver at %s failed its health check: %s", s.endpoint.URL, detail),
				retryAfter: retryStarting,
				transient:  true,
			}
		}
		return waitingFor(startingRetry(s.vc, time.Now()), "waiting for the tenant apiserver at %s to be ready: %s", s.endpoint.URL, detail)
	}
	s.answered = true
	setControlPlaneReady(s.vc)
	return nil
}

// checkReady is checkReadyz, or what a test put in its place.
func (r *Reconciler) checkReady(ctx context.Context, server string, admin adminCredentials) error {
	if r.readyz != nil {
		return r.readyz(ctx, server, admin)
	}
	return checkReadyz(ctx, server, admin)
}

// reconcileKubeconfig writes the admin kubeconfig Secret.
func (r *Reconciler) reconcileKubeconfig(ctx context.Context, s *scope) error {
	admin := adminFrom(s.pki)
	name := kubeconfigName(s.vc)
	_, err := r.applySecret(ctx, s.vc, s.vc.Status.KubeconfigSecretName, func(map[string][]byte) (map[string][]byte, error) {
		data := map[string][]byte{}
		var err error
		if data[KubeconfigKey], err = kubeconfigFor(name, s.endpoint.URL, admin); err != nil {
			return nil, err
		}
		if s.endpoint.InClusterURL != "" {
			if data[InClusterKubeconfigKey], err = kubeconfigFor(name, s.endpoint.InClusterURL, admin); err != nil {
				return nil, err
			}
		}
		return data, nil
	})
	if err != nil {
		// Whatever stopped it (a foreign Secret of its name too), the
		// control plane answered: the reason must say the kubeconfig failed,
		// so setFailed leaves ControlPlaneReady alone.
		out := *asPhaseError(err, v1alpha1.ReasonKubeconfigWriteFailed)
		out.reason = v1alpha1.ReasonKubeconfigWriteFailed
		return &out
	}
	setKubeconfigReady(s.vc)
	return nil
}

// applySecret makes the Secret name of vc's namespace hold build(current
// data), creating it (labelled and owned by vc) when missing. A Secret of
// that name that is not vc's is left alone and reported.
func (r *Reconciler) applySecret(ctx context.Context, vc *v1alpha1.VirtualCluster, name string,
	build func(existing map[string][]byte) (map[string][]byte, error)) (map[string][]byte, error) {
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: vc.Namespace, Name: name}, secret)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, transient(fmt.Errorf("reading Secret %s/%s: %w", vc.Namespace, name, err))
	}
	if exists && !ownsObject(vc, secret) {
		return nil, failure(v1alpha1.ReasonProvisionFailed,
			"Secret %s/%s exists but does not belong to this virtual cluster (label %s=%s missing): delete or rename it",
			vc.Namespace, name, ownership.LabelControlPlane, vc.Status.ClusterKey)
	}
	data, err := build(secret.Data)
	if err != nil {
		return nil, err
	}
	if exists && sameData(secret.Data, data) {
		return data, nil
	}
	if !exists {
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: vc.Namespace}, Type: corev1.SecretTypeOpaque}
	}
	secret.Labels = mergeLabels(secret.Labels, labelsFor(vc))
	secret.Data = data
	if err := controllerutil.SetControllerReference(vc, secret, r.Scheme); err != nil {
		return nil, err
	}
	if exists {
		err = r.Client.Update(ctx, secret)
	} else {
		err = r.Client.Create(ctx, secret)
	}
	if err != nil {
		return nil, writeError(err, "writing", "Secret "+vc.Namespace+"/"+name)
	}
	return data, nil
}
