package syncer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Subresource writes the super cluster refuses.
//
// A resize (podresize.go) or an ephemeral container (podephemeral.go) that the super cluster
// refuses for good (superRefused, down.go: its admission or validation) would be refused again
// on every round, each time with an event. So the refusal is told to the tenant once, with a
// SuperClusterRejected event, and recorded on the super pod in an annotation
// (refusalAnnotations), which the down sync keeps (superKeptAnnotation, down.go); what is
// recorded is not tried again, also after a syncer restart.

// refusalAnnotations are the annotations in which a super pod records what the super cluster
// refused of its tenant pod; the syncer writes them outside the down sync.
var refusalAnnotations = []string{annotationRefusedEphemeral, annotationRefusedResize}

// withAnnotation returns a copy of super pod sp with annotation k set to v.
func withAnnotation(sp *corev1.Pod, k, v string) *corev1.Pod {
	out := sp.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[k] = v
	return out
}

// recordRefused tells tenant pod tp that the super cluster refused what (refusal), and writes
// recorded, its super pod with the refusal recorded. It reports whether it wrote; a super pod
// that changed meanwhile counts, as its event brings the next round.
func (s *Syncer) recordRefused(ctx context.Context, t *tenant, tp, recorded *corev1.Pod, what string, refusal error) (bool, error) {
	if t.recorder != nil {
		t.recorder.Eventf(tp, corev1.EventTypeWarning, "SuperClusterRejected", "The super cluster refused %s: %v", what, refusal)
	}
	// The event goes first: a record that fails now brings it once more, never not at all.
	_, err := s.super.CoreV1().Pods(recorded.Namespace).Update(ctx, recorded, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		klog.FromContext(ctx).V(4).Info("Super pod changed meanwhile; its event brings the next round", "superObject", klog.KObj(recorded), "err", err)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording the refusal of %s: %w", what, err)
	}
	return true, nil
}
