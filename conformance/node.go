package conformance

import (
	"context"
	"errors"
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
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
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
//
// On a vnest tenant it then runs a privileged pod briefly (checkPrivileged): with
// requirePrivileged, a tenant that refuses it fails the run at once.
func ensureNode(ctx context.Context, kubeconfig string, requirePrivileged bool) (release func(), err error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return anchorNode(ctx, cs, requirePrivileged)
}

// anchorNode is ensureNode on a client.
func anchorNode(ctx context.Context, cs kubernetes.Interface, requirePrivileged bool) (release func(), err error) {
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
	// Placed, not just any Node listed: a Node another pod brings goes with that pod.
	if err := waitPlaced(ctx, cs, pod.Name); err != nil {
		release()
		return nil, fmt.Errorf("the anchor pod %s/%s: %w", anchorNamespace, pod.Name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, nodeWait, true, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(nodes.Items) > 0, nil
	})
	if err != nil {
		release()
		return nil, fmt.Errorf("no Node appeared within %v of running a pod: %w", nodeWait, err)
	}
	if err := checkPrivileged(ctx, cs); err != nil {
		if requirePrivileged {
			release()
			return nil, err
		}
		log.Info("Running anyway (--allow-unprivileged); the tests that need privileged pods will fail", "reason", err.Error())
	}
	return release, nil
}

// privilegedProbe is the pod checkPrivileged runs.
const privilegedProbe = "privileged-probe"

// checkPrivileged runs a privileged host-network pause pod in the anchor namespace until it is
// placed on a node, then deletes it. The suite labels its namespaces for Pod Security's
// privileged level, but a vnest tenant's level is its VirtualCluster's (the syncer enforces it,
// default baseline), and tests that need host network, host ports or privileged containers
// would each wait out a five-minute timeout and fail. The error says what to change.
func checkPrivileged(ctx context.Context, cs kubernetes.Interface) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: privilegedProbe, Namespace: anchorNamespace},
		Spec: corev1.PodSpec{
			HostNetwork: true,
			Containers: []corev1.Container{{
				Name: "pause", Image: images.PauseImage, ImagePullPolicy: corev1.PullNever,
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}},
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
	if _, err := cs.CoreV1().Pods(anchorNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the pod %s/%s: %w", anchorNamespace, privilegedProbe, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := cs.CoreV1().Pods(anchorNamespace).Delete(ctx, privilegedProbe, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "Deleting the privileged probe pod", "namespace", anchorNamespace, "pod", privilegedProbe)
		}
	}()
	if err := waitPlaced(ctx, cs, privilegedProbe); err != nil {
		return fmt.Errorf("the cluster does not run a privileged host-network pod (%s/%s: %w); the suite's "+
			"host-network, hostPort and privileged tests need one: on a vnest tenant, set its VirtualCluster's "+
			"spec.policy.podSecurityLevel to privileged, as make conformance does "+
			"(kubectl -n NAMESPACE patch virtualcluster NAME --type merge -p '{\"spec\":{\"policy\":{\"podSecurityLevel\":\"privileged\"}}}'), "+
			"or pass --allow-unprivileged to run anyway", anchorNamespace, privilegedProbe, err)
	}
	return nil
}

// waitPlaced waits until the pod in the anchor namespace is bound to a node. A pod the vnest
// syncer refuses to run (its PodScheduled condition False for the tenant's policy or quota)
// fails at once, with the condition's message.
func waitPlaced(ctx context.Context, cs kubernetes.Interface, name string) error {
	var last string   // the latest PodScheduled=False reason and message
	var refused error // the syncer's refusal
	err := wait.PollUntilContextTimeout(ctx, time.Second, nodeWait, true, func(ctx context.Context) (bool, error) {
		pod, err := cs.CoreV1().Pods(anchorNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if pod.Spec.NodeName != "" {
			return true, nil
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				last = c.Reason + ": " + c.Message
				if c.Reason == v1alpha1.PodReasonSecurityViolation || c.Reason == v1alpha1.PodReasonQuotaExceeded {
					refused = errors.New(last)
					return false, refused
				}
			}
		}
		return false, nil
	})
	switch {
	case refused != nil:
		return refused
	case err != nil && last != "":
		return fmt.Errorf("not on a node within %v, last %s: %w", nodeWait, last, err)
	case err != nil:
		return fmt.Errorf("not on a node within %v: %w", nodeWait, err)
	}
	return nil
}
