package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Pod writes the super cluster refuses.
//
// A resize (podresize.go), an ephemeral container (podephemeral.go) or tolerations added in a
// down update (podplacement.go) that the super cluster refuses for good (superRefused, down.go:
// its admission or validation) would be refused again on every round, each time with an event.
// So the refusal is told to the tenant once, with a SuperClusterRejected event, and recorded on
// the super pod in an annotation (refusalAnnotations), which the down sync keeps
// (superKeptAnnotation, down.go); what is recorded is not tried again, also after a syncer
// restart. A record is the refused requests, comma-separated (names, or refusalHash of what was
// asked), then a space and the last refusal's message, if kept.

// refusalAnnotations are the annotations in which a super pod records what the super cluster
// refused of its tenant pod; the syncer writes them outside the down sync.
var refusalAnnotations = []string{annotationRefusedEphemeral, annotationRefusedResize, annotationRefusedTolerations}

// refusalHash names a refused request by what it asked: a short hash of vs, as JSON.
func refusalHash(vs ...any) string {
	sum := sha256.New()
	for _, v := range vs {
		b, _ := json.Marshal(v) // API types always marshal
		sum.Write(b)
		sum.Write([]byte{0})
	}
	return hex.EncodeToString(sum.Sum(nil))[:16]
}

// refusalRecord is the record in annotation k of super pod sp: the refused requests, and the
// message kept with them.
func refusalRecord(sp *corev1.Pod, k string) (requests []string, msg string) {
	v := sp.Annotations[k]
	if v == "" {
		return nil, ""
	}
	reqs, msg, _ := strings.Cut(v, " ")
	return strings.Split(reqs, ","), msg
}

// withRefusal returns a copy of super pod sp recording requests, with msg if not empty, in
// annotation k.
func withRefusal(sp *corev1.Pod, k string, requests []string, msg string) *corev1.Pod {
	v := strings.Join(requests, ",")
	if msg != "" {
		v += " " + msg
	}
	return withAnnotation(sp, k, v)
}

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
