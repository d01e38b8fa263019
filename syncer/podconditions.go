package syncer

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Pod conditions the tenant sets itself.
//
// The status that goes up is the super pod's (podStatusUp), but some pod conditions are written
// in the tenant and never exist on the super pod: DisruptionTarget, which the tenant's eviction
// API (and its pod garbage collector) add before deleting a pod, and which a Job's pod failure
// policy reads once the pod has failed; and any custom condition a tenant controller sets.
// Copying the super status over them would erase them, so they are kept: a tenant condition of a
// type the super pod does not report, and that is not one of the types a kubelet or scheduler
// own, stays. A condition the super pod reports wins. (A readiness gate's condition set in the
// tenant stays in the tenant; it does not reach the super pod, whose kubelet decides Ready.)

// superOwnedConditions are the pod condition types the super cluster's kubelet and scheduler
// write; the super pod's word on them is final (absent there means absent).
var superOwnedConditions = []corev1.PodConditionType{
	corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady,
	corev1.PodReadyToStartContainers, corev1.PodResizePending, corev1.PodResizeInProgress,
}

// keepTenantConditions adds to st (the status going up) the conditions of tenant pod tp that only
// the tenant sets.
func keepTenantConditions(st corev1.PodStatus, tp *corev1.Pod) corev1.PodStatus {
	for _, c := range tp.Status.Conditions {
		if slices.Contains(superOwnedConditions, c.Type) ||
			slices.ContainsFunc(st.Conditions, func(s corev1.PodCondition) bool { return s.Type == c.Type }) {
			continue
		}
		st.Conditions = append(st.Conditions, c)
	}
	return st
}
