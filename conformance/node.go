package conformance

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/images"
)

// anchorNamespace holds the anchor pod ensureNode may create.
const anchorNamespace = "vnest-conformance-anchor"

// nodeWait bounds the wait for a Node to appear once the anchor pod exists.
const nodeWait = 3 * time.Minute

// ensureNode makes sure the cluster lists a Node before the suite starts:
// the suite refuses to run without a schedulable node, and a vnest tenant
// shows a (virtual) Node only while one of its pods runs there. If there is
// none, it runs a pause pod and waits for the Node; release deletes the pod's
// namespace again. A cluster that has Nodes is left alone.
func ensureNode(ctx context.Context, kubeconfig string) (release func(), err error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	if len(nodes.Items) > 0 {
		return func() {}, nil
	}
	log := klog.FromContext(ctx)
	log.Info("The cluster lists no Node; running an anchor pod so its virtual Node appears", "namespace", anchorNamespace)
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
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "anchor", Namespace: anchorNamespace},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "pause", Image: images.PauseImage, ImagePullPolicy: corev1.PullNever,
		}}},
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
