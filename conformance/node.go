package conformance

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/images"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// anchorNamespace holds the anchor pod ensureNode may create.
const anchorNamespace = "vnest-conformance-anchor"

// nodeWait bounds the wait for a Node to appear once the anchor pod exists.
const nodeWait = 3 * time.Minute

// ensureNode makes sure the cluster lists a Node from before the suite starts
// to its end: the suite refuses to run without a schedulable node, and a
// vnest tenant shows a (virtual) Node only while one of its pods runs there —
// a tenant whose last pod ends in a gap between tests has no node for the
// next one. So unless the cluster's Nodes are all real (not labelled virtual),
// it runs a pause pod for the whole run and waits for its Node; release
// deletes the pod's namespace again.
func ensureNode(ctx context.Context, kubeconfig string) (release func(), err error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return anchorNode(ctx, cs)
}

// anchorNode is ensureNode on a client.
func anchorNode(ctx context.Context, cs kubernetes.Interface) (release func(), err error) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	virtual := slices.ContainsFunc(nodes.Items, func(n corev1.Node) bool { return n.Labels[ownership.LabelVirtualNode] == "true" })
	if len(nodes.Items) > 0 && !virtual {
		return func() {}, nil
	}
	log := klog.FromContext(ctx)
	log.Info("Running an anchor pod so that a virtual Node is there for the whole run", "namespace", anchorNamespace, "nodes", len(nodes.Items))
	// The namespace of an earlier run may still be terminating; a pod cannot be created in it.
	err = wait.PollUntilContextTimeout(ctx, time.Second, nodeWait, true, func(ctx context.Context) (bool, error) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: anchorNamespace}}
		_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			got, err := cs.CoreV1().Namespaces().Get(ctx, anchorNamespace, metav1.GetOptions{})
			return err == nil && got.DeletionTimestamp == nil, nil
		}
		return err == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", anchorNamespace, err)
	}
	release = func() {
		// The run's context may be cancelled by now; the clean-up still has to happen.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, anchorNamespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			log.Error(err, "Deleting the anchor namespace", "namespace", anchorNamespace)
		}
	}
	// It tolerates every taint, as a node's system daemons do: the tests that taint the Node
	// NoExecute (NoExecuteTaintManager) evict their own pods, not the anchor, so the Node stays.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "anchor", Namespace: anchorNamespace},
		Spec: corev1.PodSpec{
			Containers:  []corev1.Container{{Name: "pause", Image: images.PauseImage, ImagePullPolicy: corev1.PullNever}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
	if _, err := cs.CoreV1().Pods(anchorNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		release()
		return nil, fmt.Errorf("creating the anchor pod: %w", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, nodeWait, true, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(nodes.Items) > 0, nil
	})
	if err != nil {
		release()
		return nil, fmt.Errorf("no Node appeared within %v of running a pod: %w", nodeWait, err)
	}
	return release, nil
}
