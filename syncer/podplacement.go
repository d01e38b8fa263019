package syncer

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Re-placing a Pending pod. A super pod's node affinity is fixed when it is created, but the
// syncer writes into it node names that follow the tenant's virtual Nodes: those with the
// tenant's labels the pod selects (nodelabels.go) and those with the tenant's taints it does not
// tolerate (nodetaints.go). When those names change while the super pod waits unscheduled (a
// label added to a Node, a taint removed), the syncer deletes the super pod (preconditions: its
// UID and resource version, so a pod scheduled meanwhile is not touched) and the next round
// creates it with the new placement. Nothing ran, so nothing is lost; the tenant pod stays
// Pending throughout. The patrol brings every pod round once a resync period, so a change is
// acted on within one.

// nodeNameRequirements is the node-name requirements (matchFields metadata.name) of spec's
// required node affinity, over all terms, each as "operator values", sorted and without
// duplicates: what the syncer writes into the affinity to place a pod, and little else does.
func nodeNameRequirements(spec *corev1.PodSpec) []string {
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	var out []string
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range term.MatchFields {
			if r.Key == metav1.ObjectNameField {
				out = append(out, string(r.Operator)+" "+strings.Join(slices.Sorted(slices.Values(r.Values)), ","))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// placementChanged reports whether a super pod with spec desired would be placed by other node
// names than existing, which waits unscheduled.
func placementChanged(desired *corev1.PodSpec, existing *corev1.Pod) bool {
	return existing.Spec.NodeName == "" && !slices.Equal(nodeNameRequirements(desired), nodeNameRequirements(&existing.Spec))
}

// replacePending deletes super pod sp when it waits unscheduled and the tenant pod tp would now
// go down with another placement; it reports whether it deleted (the delete event brings the
// round that creates it again). For a pod without a nodeName, the node names of its super pod
// are those of onTenantNodes (the rest of translatePod adds none), so that alone is computed.
func (s *Syncer) replacePending(ctx context.Context, t *tenant, tp, sp *corev1.Pod) (bool, error) {
	if sp.Spec.NodeName != "" || tp.Spec.NodeName != "" || !placementChanged(&t.onTenantNodes(tp).Spec, sp) {
		return false, nil
	}
	klog.FromContext(ctx).V(2).Info("Placement among the tenant's Nodes changed; creating the unscheduled super pod again")
	err := s.super.CoreV1().Pods(sp.Namespace).Delete(ctx, sp.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &sp.UID, ResourceVersion: &sp.ResourceVersion},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil // gone or changed (scheduled, perhaps) meanwhile: its event brings the next round
	}
	return err == nil, err
}
