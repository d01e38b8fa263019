package conformance

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// TestAnchorNode: a cluster of real Nodes gets no anchor pod; a vnest tenant gets one for the
// whole run even when it lists a virtual Node at the start (its last pod may end between two
// tests, and the Node with it), and one that lists no Node gets one and the Node it brings.
// release deletes the anchor's namespace.
func TestAnchorNode(t *testing.T) {
	virtual := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", Labels: map[string]string{ownership.LabelVirtualNode: "true"}}}
	real := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm"}}
	for _, tc := range []struct {
		name       string
		nodes      []runtime.Object
		wantAnchor bool
	}{
		{"real nodes", []runtime.Object{real}, false},
		{"a virtual node", []runtime.Object{virtual}, true},
		{"no node yet", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(tc.nodes...)
			cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				// The syncer publishes the virtual node of the pod's super node.
				_ = cs.Tracker().Add(virtual.DeepCopy())
				return false, nil, nil
			})
			release, err := anchorNode(t.Context(), cs)
			if err != nil {
				t.Fatal(err)
			}
			anchor, err := cs.CoreV1().Pods(anchorNamespace).Get(t.Context(), "anchor", metav1.GetOptions{})
			if gotAnchor := err == nil; gotAnchor != tc.wantAnchor {
				t.Fatalf("anchor pod: %v; want one: %t", err, tc.wantAnchor)
			}
			// A NoExecute taint a test puts on the Node must not evict the anchor.
			noExecute := &corev1.Taint{Key: "kubernetes.io/e2e-evict-taint-key", Value: "evictTaintVal", Effect: corev1.TaintEffectNoExecute}
			if tc.wantAnchor && !corev1helpers.TolerationsTolerateTaint(klog.Background(), anchor.Spec.Tolerations, noExecute, false) {
				t.Errorf("anchor pod tolerations %v; want every taint tolerated", anchor.Spec.Tolerations)
			}
			release()
			if _, err := cs.CoreV1().Namespaces().Get(t.Context(), anchorNamespace, metav1.GetOptions{}); err == nil {
				t.Errorf("namespace %s still there after release", anchorNamespace)
			}
		})
	}
}
