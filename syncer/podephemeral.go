package syncer

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// Ephemeral containers of tenant pods.
//
// A tenant adds an ephemeral container (kubectl debug) through its pods/ephemeralcontainers
// subresource; a pod cannot be created with one, and one cannot be changed or removed. The
// syncer adds each ephemeral container of a tenant pod that its super pod lacks (by name)
// through the super cluster's pods/ephemeralcontainers subresource, translated as the pod's
// other containers are: the tenant's service environment in front of its own env, and env
// fields of the downward API with the tenant pod's values (podenv.go). Volume mounts name the
// pod's own volumes, which the super pod has under the same names; targetContainerName names a
// container of the same pod. Their status comes up with the pod's; logs, exec and attach reach
// them through the kubelet proxy like any container. The write goes before the down update that
// stamps the tenant generation (podgeneration.go). The super namespace enforces the virtual
// cluster's Pod Security level on the subresource too (a debug profile that adds SYS_PTRACE
// breaks baseline): a refusal shows as a SuperClusterRejected event on the tenant pod and does
// not hold up the pod's other changes or its status for more than a round. Containers go one per
// write, so a refusal is one container's; the super pod records its name in
// annotationRefusedEphemeral (podrefused.go), and the container is not tried again until what
// refused it may have changed (a policy change, refusalRetryPeriod): one event per refused
// container (and per policy change), and none again after a syncer restart. A later ephemeral
// container (kubectl debug names each anew) is tried on its own.

// annotationRefusedEphemeral records, on a super pod, the ephemeral containers of its tenant pod
// that the super cluster refused: their names, and no message (podrefused.go).
const annotationRefusedEphemeral = ownership.ReservedPrefix + "refused-ephemeral-containers"

// hasEphemeral reports whether super pod sp has ephemeral container name.
func hasEphemeral(sp *corev1.Pod, name string) bool {
	return slices.ContainsFunc(sp.Spec.EphemeralContainers, func(x corev1.EphemeralContainer) bool { return x.Name == name })
}

// ephemeralContainers are the common parts of ecs, as containers, for code that reads containers
// (podReferences).
func ephemeralContainers(ecs []corev1.EphemeralContainer) []corev1.Container {
	out := make([]corev1.Container, len(ecs))
	for i, ec := range ecs {
		out[i] = corev1.Container(ec.EphemeralContainerCommon)
	}
	return out
}

// withEphemeralContainers returns a copy of super pod sp with the first ephemeral container of
// tenant pod tp that it lacks and has not refused appended, translated with the service
// environment env returns; nil when there is none. The super pod's own ephemeral containers
// stay as they are.
func withEphemeralContainers(sp, tp *corev1.Pod, env func() []corev1.EnvVar) *corev1.Pod {
	refused := refusalRecord(sp, annotationRefusedEphemeral) // podrefused.go
	i := slices.IndexFunc(tp.Spec.EphemeralContainers, func(ec corev1.EphemeralContainer) bool {
		return !refused.stands(ec.Name) && !hasEphemeral(sp, ec.Name)
	})
	if i < 0 {
		return nil
	}
	ec := *tp.Spec.EphemeralContainers[i].DeepCopy()
	tenantEnvFields(ec.Env, tp)
	if serviceEnv := env(); len(serviceEnv) > 0 {
		ec.Env = slices.Concat(serviceEnv, ec.Env)
	}
	out := sp.DeepCopy()
	out.Spec.EphemeralContainers = append(out.Spec.EphemeralContainers, ec)
	return out
}

// ephemeralContainersDown adds an ephemeral container of tenant pod tp that super pod sp lacks
// through the super cluster's pods/ephemeralcontainers subresource. It reports whether it
// wrote; the write's event brings the pod round again. A refusal is told to the tenant and
// recorded on sp, a write too.
func (s *Syncer) ephemeralContainersDown(ctx context.Context, t *tenant, tp, sp *corev1.Pod) (bool, error) {
	if podTerminal(sp) {
		return false, nil
	}
	up := withEphemeralContainers(sp, tp, func() []corev1.EnvVar { return t.tenantEnv(tp) })
	if up == nil {
		return false, nil
	}
	if err := guard(t, tp.Namespace, sp); err != nil {
		return false, err
	}
	name := up.Spec.EphemeralContainers[len(up.Spec.EphemeralContainers)-1].Name
	klog.FromContext(ctx).V(2).Info("Adding an ephemeral container to the super pod", "superObject", klog.KObj(sp), "container", name)
	_, err := s.super.CoreV1().Pods(sp.Namespace).UpdateEphemeralContainers(ctx, sp.Name, up, metav1.UpdateOptions{})
	if !superRefused(err) { // down.go
		return err == nil, err
	}
	// The record keeps no message: each container's refusal has its own. Those the super pod has
	// now, retried with success, go from it.
	recorded, tell := s.refused(t, sp, annotationRefusedEphemeral, []string{name}, func(n string) bool { return !hasEphemeral(sp, n) }, "") // podrefused.go
	return s.recordRefused(ctx, t, tp, recorded, tell, "ephemeral container "+name, err)
}
