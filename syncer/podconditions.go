package syncer

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod conditions the tenant sets itself.
//
// The status that goes up is the super pod's (podStatusUp), but some pod conditions are written
// in the tenant and never exist on the super pod: DisruptionTarget, which the tenant's eviction
// API (and its pod garbage collector) add before deleting a pod, and which a Job's pod failure
// policy reads once the pod has failed; and any custom condition a tenant controller sets.
// Copying the super status over them would erase them, so they are kept: a tenant condition of a
// type the super pod does not report, and that is not one of the types a kubelet or scheduler
// own, stays. A condition the super pod reports wins.
//
// Readiness gates are the exception to "Ready is the super pod's". A gate's condition is set by a
// tenant controller in the tenant and never reaches the super pod, so the super pod goes down
// without the gates (translatePod): its kubelet would otherwise report Ready=False for ever.
// Ready then goes up as the tenant's kubelet would make it (tenantReady): the super pod's while
// its containers are not ready, else True only when every gate's condition is True.

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

// reasonReadinessGatesNotReady is the kubelet's reason for a Ready=False held back by readiness
// gates (k8s.io/kubernetes/pkg/kubelet/status).
const reasonReadinessGatesNotReady = "ReadinessGatesNotReady"

// tenantReady sets the Ready condition of st (the status going up, with the tenant's conditions
// kept) for tenant pod tp's readiness gates, as the kubelet's GeneratePodReadyCondition does: a
// Ready the super pod reports with its containers not ready stays as it is; with them ready it
// is True only if each gate's condition is True, else False with the kubelet's reason and
// message. Its transition time is the tenant's when the status does not change, else now.
func tenantReady(st corev1.PodStatus, tp *corev1.Pod, now metav1.Time) corev1.PodStatus {
	i := slices.IndexFunc(st.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady })
	if len(tp.Spec.ReadinessGates) == 0 || i < 0 {
		return st
	}
	// Containers not ready: the super pod's Ready says so as the tenant's kubelet would. (A super
	// pod made before the gates were dropped still has them, so its Ready may be False for them
	// alone; its ContainersReady is not.)
	if st.Conditions[i].Status != corev1.ConditionTrue && !hasCondition(st.Conditions, corev1.ContainersReady, corev1.ConditionTrue) {
		return st
	}
	var unready []string
	for _, g := range tp.Spec.ReadinessGates {
		j := slices.IndexFunc(st.Conditions, func(c corev1.PodCondition) bool { return c.Type == g.ConditionType })
		switch {
		case j < 0:
			unready = append(unready, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(g.ConditionType)))
		case st.Conditions[j].Status != corev1.ConditionTrue:
			unready = append(unready, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(g.ConditionType), st.Conditions[j].Status))
		}
	}
	ready := st.Conditions[i]
	ready.Status, ready.Reason, ready.Message = corev1.ConditionTrue, "", ""
	if len(unready) > 0 {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, reasonReadinessGatesNotReady, strings.Join(unready, ", ")
	}
	ready.LastTransitionTime = now
	for _, old := range tp.Status.Conditions {
		if old.Type == corev1.PodReady && old.Status == ready.Status {
			ready.LastTransitionTime = old.LastTransitionTime
		}
	}
	st.Conditions = slices.Clone(st.Conditions)
	st.Conditions[i] = ready
	return st
}

func hasCondition(conds []corev1.PodCondition, typ corev1.PodConditionType, status corev1.ConditionStatus) bool {
	return slices.ContainsFunc(conds, func(c corev1.PodCondition) bool { return c.Type == typ && c.Status == status })
}
