package syncer

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
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
// not hold up the pod's other changes or its status.

// ephemeralContainers are the common parts of ecs, as containers, for code that reads containers
// (podReferences).
func ephemeralContainers(ecs []corev1.EphemeralContainer) []corev1.Container {
	out := make([]corev1.Container, len(ecs))
	for i, ec := range ecs {
		out[i] = corev1.Container(ec.EphemeralContainerCommon)
	}
	return out
}

// withEphemeralContainers returns a copy of super pod sp with the ephemeral containers of
// tenant pod tp it lacks appended, translated with the service environment env returns; nil
// when it lacks none. The super pod's own ephemeral containers stay as they are.
func withEphemeralContainers(sp, tp *corev1.Pod, env func() []corev1.EnvVar) *corev1.Pod {
	var missing []corev1.EphemeralContainer
	for _, ec := range tp.Spec.EphemeralContainers {
		if !slices.ContainsFunc(sp.Spec.EphemeralContainers, func(x corev1.EphemeralContainer) bool { return x.Name == ec.Name }) {
			missing = append(missing, ec)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	serviceEnv := env()
	out := sp.DeepCopy()
	for _, ec := range missing {
		ec := *ec.DeepCopy()
		tenantEnvFields(ec.Env, tp)
		if len(serviceEnv) > 0 {
			ec.Env = slices.Concat(serviceEnv, ec.Env)
		}
		out.Spec.EphemeralContainers = append(out.Spec.EphemeralContainers, ec)
	}
	return out
}

// ephemeralContainersDown adds tenant pod tp's ephemeral containers that super pod sp lacks
// through the super cluster's pods/ephemeralcontainers subresource. It reports whether it
// wrote; the write's event brings the pod round again. A refusal does not hold up the pod.
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
	klog.FromContext(ctx).V(2).Info("Adding ephemeral containers to super pod", "superObject", klog.KObj(sp),
		"containers", len(up.Spec.EphemeralContainers)-len(sp.Spec.EphemeralContainers))
	_, err := s.super.CoreV1().Pods(sp.Namespace).UpdateEphemeralContainers(ctx, sp.Name, up, metav1.UpdateOptions{})
	if superRefused(err) { // down.go
		s.recordRejected(t, tp, kindPod, err)
		return false, nil
	}
	return true, err
}
