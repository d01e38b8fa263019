package manager

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// vcWrapper builds VirtualClusters for tests: makeVC("demo").Cond(...).Obj().
type vcWrapper struct{ v1alpha1.VirtualCluster }

func makeVC(name string) *vcWrapper {
	w := &vcWrapper{}
	w.Name, w.Namespace, w.UID, w.Generation = name, "default", types.UID("uid-"+name), 1
	return w
}

func (w *vcWrapper) Obj() *v1alpha1.VirtualCluster { return w.DeepCopy() }

func (w *vcWrapper) Deleting() *vcWrapper {
	now := metav1.Now()
	w.DeletionTimestamp = &now
	return w
}

func (w *vcWrapper) Finalizer() *vcWrapper {
	w.Finalizers = append(w.Finalizers, Finalizer)
	return w
}

func (w *vcWrapper) Cond(typ string, status metav1.ConditionStatus, reason string) *vcWrapper {
	w.Status.Conditions = append(w.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason})
	return w
}

func (w *vcWrapper) CondSince(typ string, status metav1.ConditionStatus, reason string, since metav1.Time) *vcWrapper {
	w.Cond(typ, status, reason)
	w.Status.Conditions[len(w.Status.Conditions)-1].LastTransitionTime = since
	return w
}

func (w *vcWrapper) Provisioner(p v1alpha1.Provisioner) *vcWrapper {
	w.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{Provisioner: p, Expose: w.expose()}
	return w
}

func (w *vcWrapper) Expose(t v1alpha1.ExposeType, sans ...string) *vcWrapper {
	if w.Spec.ControlPlane == nil {
		w.Spec.ControlPlane = &v1alpha1.ControlPlaneSpec{}
	}
	w.Spec.ControlPlane.Expose = &v1alpha1.ExposeSpec{Type: t, ExtraSANs: sans}
	return w
}

func (w *vcWrapper) expose() *v1alpha1.ExposeSpec {
	if w.Spec.ControlPlane == nil {
		return nil
	}
	return w.Spec.ControlPlane.Expose
}

func (w *vcWrapper) EtcdStorage(secret string, endpoints ...string) *vcWrapper {
	w.Spec.Storage = &v1alpha1.StorageSpec{Etcd: &v1alpha1.EtcdStorage{
		Endpoints: endpoints, CredentialsSecretRef: v1alpha1.SecretReference{Name: secret},
	}}
	return w
}

func (w *vcWrapper) Key(key string) *vcWrapper {
	w.Status.ClusterKey = key
	w.Status.EtcdPrefix = EtcdPrefix(key)
	return w
}

// Running gives the VirtualCluster the status of a tenant that is Running:
// an endpoint, its kubeconfig Secret, both conditions True.
func (w *vcWrapper) Running() *vcWrapper {
	w.Status.Endpoint, w.Status.KubeconfigSecretName = "https://192.0.2.1:7000", w.KubeconfigSecretName()
	setControlPlaneReady(&w.VirtualCluster)
	setKubeconfigReady(&w.VirtualCluster)
	w.Status.Phase = v1alpha1.PhaseRunning
	return w
}

func (w *vcWrapper) Annotation(key, value string) *vcWrapper {
	metav1.SetMetaDataAnnotation(&w.ObjectMeta, key, value)
	return w
}
