package syncer

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
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
// refuses (its admission, e.g. a LimitRange of the super namespace) shows as one
// SuperClusterRejected event on the tenant pod and does not hold up the pod's other changes or
// its status for more than a round. The super pod records the refused request
// (annotationRefusedResize, podrefused.go), which is not tried again until what refused it may
// have changed (a policy change, refusalRetryPeriod); a request the tenant makes with other
// values is. The super kubelet never sees a refused resize, so the tenant pod's
// PodResizePending condition says so as a kubelet says of a resize it can never admit: True,
// reason Infeasible, with the refusal's message (refusedResizeStatus). A resize that grows a
// pod must fit the tenant's spec.policy.quota as a new pod must (podpolicy.go): one that does
// not is not applied, and a TenantQuotaExceeded event on the tenant pod says why; it is looked
// at again on the pod's next round.

// annotationRefusedResize records, on a super pod, the last resize of its tenant pod that the
// super cluster refused: its resizeRequest, and the refusal's message (podrefused.go).
const annotationRefusedResize = ownership.ReservedPrefix + "refused-resize"

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

// resizeFields is what a resize of p writes: each (init) container's resources and resize
// policy, by name, and the pod-level resources.
func resizeFields(p *corev1.Pod) corev1.PodSpec {
	fields := func(cs []corev1.Container) []corev1.Container {
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			out[i] = corev1.Container{Name: c.Name, Resources: c.Resources, ResizePolicy: c.ResizePolicy}
		}
		return out
	}
	return corev1.PodSpec{InitContainers: fields(p.Spec.InitContainers), Containers: fields(p.Spec.Containers), Resources: p.Spec.Resources}
}

// resizeRequest names the resize of super pod sp to resized (resizedPod): a hash of the
// resources of both. The resources sp has count, so values asked again after another resize
// went through are a new request.
func resizeRequest(sp, resized *corev1.Pod) string {
	return refusalHash(resizeFields(sp), resizeFields(resized)) // podrefused.go
}

// refusedResize is the message of the refusal that super pod sp records for its resize to
// resized; ok is false when sp records none for that request, and due is true when the record
// is due for retry (refusalsDue, podrefused.go).
func refusedResize(sp, resized *corev1.Pod) (msg string, ok, due bool) {
	r, req := refusalRecord(sp, annotationRefusedResize), resizeRequest(sp, resized)
	if !r.has(req) {
		return "", false, false
	}
	return r.msg, true, !r.stands(req)
}

// refusedResizeStatus sets, in st (the status going up for tenant pod tp from super pod sp), a
// PodResizePending condition for a resize of tp's that sp records as refused: True, reason
// Infeasible, as a kubelet reports a resize it can never admit (the super kubelet never saw
// it, so the super pod's word on the condition is about an older spec). Its transition time is
// the tenant's when that already said Infeasible, else now.
func refusedResizeStatus(st corev1.PodStatus, sp, tp *corev1.Pod, now metav1.Time) corev1.PodStatus {
	if sp.Annotations[annotationRefusedResize] == "" {
		return st // no refusal recorded: no copy of the pod on every status round
	}
	resized := resizedPod(sp, tp)
	if resized == nil {
		return st
	}
	msg, refused, _ := refusedResize(sp, resized) // Infeasible until a retry goes through
	if !refused {
		return st
	}
	pending := corev1.PodCondition{
		Type: corev1.PodResizePending, Status: corev1.ConditionTrue, ObservedGeneration: tp.Generation, LastTransitionTime: now,
		Reason: corev1.PodReasonInfeasible, Message: "The super cluster refused the resize: " + msg,
	}
	for _, old := range tp.Status.Conditions {
		if old.Type == corev1.PodResizePending && old.Reason == corev1.PodReasonInfeasible {
			pending.LastTransitionTime = old.LastTransitionTime
		}
	}
	st.Conditions = slices.DeleteFunc(slices.Clone(st.Conditions), func(c corev1.PodCondition) bool { return c.Type == corev1.PodResizePending })
	st.Conditions = append(st.Conditions, pending)
	return st
}

// resizePodDown resizes super pod sp to tenant pod tp's resources through the super cluster's
// pods/resize subresource when they differ and sp does not record that request as refused. It
// reports whether it wrote; the write's event brings the pod round again. A refusal is told to
// the tenant and recorded on sp, a write too.
func (s *Syncer) resizePodDown(ctx context.Context, t *tenant, tp, sp *corev1.Pod) (bool, error) {
	if podTerminal(sp) {
		return false, nil
	}
	resized := resizedPod(sp, tp)
	if resized == nil {
		return false, nil
	}
	if _, refused, due := refusedResize(sp, resized); refused && !due {
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
	if !superRefused(err) { // down.go
		return err == nil, err
	}
	// The record keeps the last request only: the resources of sp count in it.
	recorded, tell := s.refused(t, sp, annotationRefusedResize, []string{resizeRequest(sp, resized)}, func(string) bool { return false }, err.Error()) // podrefused.go
	return s.recordRefused(ctx, t, tp, recorded, tell, "the resize", err)
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
