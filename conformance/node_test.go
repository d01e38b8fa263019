package conformance

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// TestAnchorNode: a cluster of real Nodes gets no anchor pod; a vnest tenant gets one for the
// whole run even when it lists a virtual Node at the start (its last pod may end between two
// tests, and the Node with it), and one that lists no Node gets one and the Node it brings.
// A tenant that refuses privileged pods fails at once with what to change, unless that is
// allowed; one that refuses the anchor itself fails with the refusal. release deletes the
// anchor's namespace.
func TestAnchorNode(t *testing.T) {
	virtual := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", Labels: map[string]string{ownership.LabelVirtualNode: "true"}}}
	real := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm"}}
	privileged := func(p *corev1.Pod) bool { return p.Spec.HostNetwork }
	anyPod := func(*corev1.Pod) bool { return true }
	for _, tc := range []struct {
		name              string
		nodes             []runtime.Object
		refuse            func(*corev1.Pod) bool // pods the syncer refuses, as for a baseline tenant
		allowUnprivileged bool
		wantAnchor        bool
		wantErr           []string // in the error, in this order
	}{
		{name: "real nodes", nodes: []runtime.Object{real}},
		{name: "a virtual node", nodes: []runtime.Object{virtual}, wantAnchor: true},
		{name: "no node yet", wantAnchor: true},
		{name: "privileged pods refused", nodes: []runtime.Object{virtual}, refuse: privileged,
			wantErr: []string{v1alpha1.PodReasonSecurityViolation, "spec.policy.podSecurityLevel", "--allow-unprivileged"}},
		{name: "privileged pods refused, allowed", refuse: privileged, allowUnprivileged: true, wantAnchor: true},
		{name: "the anchor refused", nodes: []runtime.Object{virtual}, refuse: anyPod,
			wantErr: []string{"anchor pod", v1alpha1.PodReasonSecurityViolation}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(tc.nodes...)
			var probed bool
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
				probed = probed || privileged(pod)
				if tc.refuse != nil && tc.refuse(pod) {
					pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
						Reason: v1alpha1.PodReasonSecurityViolation, Message: `violates PodSecurity "baseline:latest"`}}
					return false, nil, nil
				}
				// The syncer binds the pod and publishes the virtual node of its super node.
				pod.Spec.NodeName = virtual.Name
				_ = cs.Tracker().Add(virtual.DeepCopy())
				return false, nil, nil
			})
			release, err := anchorNode(t.Context(), cs, !tc.allowUnprivileged)
			if len(tc.wantErr) > 0 {
				if err == nil || !containsInOrder(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one with %q", err, tc.wantErr)
				}
				if _, err := cs.CoreV1().Namespaces().Get(t.Context(), anchorNamespace, metav1.GetOptions{}); err == nil {
					t.Errorf("namespace %s left after the failure", anchorNamespace)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			anchor, err := cs.CoreV1().Pods(anchorNamespace).Get(t.Context(), "anchor", metav1.GetOptions{})
			if gotAnchor := err == nil; gotAnchor != tc.wantAnchor {
				t.Fatalf("anchor pod: %v; want one: %t", err, tc.wantAnchor)
			}
			if probed != tc.wantAnchor {
				t.Errorf("privileged probe pod created: %t; want %t (on a vnest tenant only)", probed, tc.wantAnchor)
			}
			if _, err := cs.CoreV1().Pods(anchorNamespace).Get(t.Context(), privilegedProbe, metav1.GetOptions{}); err == nil {
				t.Errorf("privileged probe pod left running")
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

// containsInOrder reports whether s holds every part, one after the other.
func containsInOrder(s string, parts []string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
