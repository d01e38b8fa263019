package syncer

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// In-place resize of tenant pods.
//
// A tenant resizes a pod through its pods/resize subresource (or a replace of it): the tenant
// apiserver validates the change and writes the new container resources into the pod's spec.
// The syncer carries them to the super pod through the super cluster's pods/resize subresource,
// so the super kubelet actuates the resize; what the kubelet reports (conditions
// PodResizePending and PodResizeInProgress, containerStatuses[].resources and
// allocatedResources, restart counts) comes up with the pod's status, and the observed
// generation tells the tenant when the kubelet has seen the resize (podgeneration.go).
//
// What goes down is what the resize subresource takes: each (init) container's resources and
// resizePolicy, matched by name, and the pod-level resources. The super pod's resources are the
// tenant pod's (translatePod copies them), so any difference is a resize to apply. The resize
// is written before the down update that stamps the tenant generation, so the super pod never
// claims a tenant generation whose resize it has not received. A resize the super cluster
// refuses (its admission, e.g. a LimitRange of the super namespace) shows as a
// SuperClusterRejected event on the tenant pod and does not hold up the pod's other changes or
// its status. A resize that grows a pod must fit the tenant's spec.policy.quota as a new pod
// must (podpolicy.go): one that does not is not applied, and a TenantQuotaExceeded event on the
// tenant pod says why; it is looked at again on the pod's next round.

// resizedPod returns a copy of super pod sp with the resources of tenant pod tp (containers and
// init containers by name, and the pod level), or nil when they already match.
func resizedPod(sp, tp *corev1.Pod) *corev1.Pod {
	out := sp.DeepCopy()
	changed := resizeContainers(out.Spec.InitContainers, tp.Spec.InitContainers)
	changed = resizeContainers(out.Spec.Containers, tp.Spec.Containers) || changed
	if !apiequality.Semantic.DeepEqual(out.Spec.Resources, tp.Spec.Resources) {
		out.Spec.Resources = tp.Spec.Resources.DeepCopy()
		changed = true
	}
	if !changed {
		return nil
	}
	return out
}

// resizeContainers writes the resources and resize policy of each container of want into the
// container of the same name in super, and reports whether any differed.
func resizeContainers(super, want []corev1.Container) bool {
	changed := false
	for i := range super {
		for _, w := range want {
			if w.Name != super[i].Name {
				continue
			}
			if !apiequality.Semantic.DeepEqual(super[i].Resources, w.Resources) {
				super[i].Resources = *w.Resources.DeepCopy()
				changed = true
			}
			if !apiequality.Semantic.DeepEqual(super[i].ResizePolicy, w.ResizePolicy) {
				super[i].ResizePolicy = append([]corev1.ContainerResizePolicy(nil), w.ResizePolicy...)
				changed = true
			}
			break
		}
	}
	return changed
}

// resizePodDown resizes super pod sp to tenant pod tp's resources through the super cluster's
// pods/resize subresource when they differ. It reports whether it wrote; the write's event
// brings the pod round again. A refusal does not hold up the pod (superRefused).
func (s *Syncer) resizePodDown(ctx context.Context, t *tenant, tp, sp *corev1.Pod) (bool, error) {
	if podTerminal(sp) {
		return false, nil
	}
	resized := resizedPod(sp, tp)
	if resized == nil {
		return false, nil
	}
	if err := guard(t, tp.Namespace, sp); err != nil {
		return false, err
	}
	if msg, err := s.resizeOverQuota(t, sp, resized); err != nil || msg != "" {
		if msg != "" && t.recorder != nil {
			t.recorder.Event(tp, corev1.EventTypeWarning, v1alpha1.PodReasonQuotaExceeded, "resize not applied: "+msg)
		}
		return false, err
	}
	klog.FromContext(ctx).V(2).Info("Resizing super pod", "superObject", klog.KObj(sp))
	_, err := s.super.CoreV1().Pods(sp.Namespace).UpdateResize(ctx, sp.Name, resized, metav1.UpdateOptions{})
	if superRefused(err) {
		s.recordRejected(t, tp, kindPod, err)
		return false, nil
	}
	return true, err
}

// resizeOverQuota returns why resizing super pod sp to resized would take the tenant over its
// spec.policy.quota, or "" when it fits, there is no quota, or the resize adds nothing (a
// shrink always goes through, also over a quota lowered meanwhile).
func (s *Syncer) resizeOverQuota(t *tenant, sp, resized *corev1.Pod) (string, error) {
	hard := t.settings.Load().policy.Quota
	before, after := podUsage(sp), podUsage(resized)
	if len(hard) == 0 {
		return "", nil
	}
	grows := false
	for name, q := range after {
		if b, ok := before[name]; !ok || q.Cmp(b) > 0 {
			grows = true
		}
	}
	if !grows {
		return "", nil
	}
	t.quota.mu.Lock()
	defer t.quota.mu.Unlock()
	used, err := s.tenantUsage(t)
	if err != nil {
		return "", err
	}
	return quotaViolation(hard, quota.SubtractWithNonNegativeResult(used, before), after), nil
}
