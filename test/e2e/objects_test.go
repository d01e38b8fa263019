package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// busyboxImage is preloaded on real nodes; nothing can be pulled, so pods say IfNotPresent.
const busyboxImage = "vnest.local/busybox:1"

// busyboxPod is a single-container pod running script with busybox sh, labelled app=name.
func busyboxPod(namespace, name, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{busyboxContainer(script)}},
	}
}

func busyboxContainer(script string) corev1.Container {
	return corev1.Container{
		Name:            "main",
		Image:           busyboxImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-c", script},
	}
}

// busyboxDeployment runs replicas pods that sleep, selected by app=name.
func busyboxDeployment(namespace, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{busyboxContainer("sleep 3600")}},
			},
		},
	}
}

// clusterIPService exposes the pods labelled app=app on port, forwarding to targetPort.
func clusterIPService(namespace, name, app string, port, targetPort int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{{
				Protocol:   corev1.ProtocolTCP,
				Port:       port,
				TargetPort: intstr.FromInt32(targetPort),
			}},
		},
	}
}

// requireReadyNodes fails the test unless the cluster has exactly want nodes, all Ready. It does
// not wait: `vnest up` writes the kubeconfig only once every node is Ready.
func requireReadyNodes(t *testing.T, c *cluster, want int) []corev1.Node {
	t.Helper()
	nodes, err := c.client.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	if len(nodes.Items) != want {
		t.Fatalf("got %d nodes %v, want %d", len(nodes.Items), nodeNames(nodes.Items), want)
	}
	for _, n := range nodes.Items {
		if !nodeReady(&n) {
			t.Errorf("node %s is not Ready: %+v", n.Name, n.Status.Conditions)
		}
	}
	return nodes.Items
}

func nodeReady(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
}

func nodeNames(nodes []corev1.Node) []string {
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return names
}

// createNamespace creates a namespace and waits for its default ServiceAccount, without which
// the apiserver rejects pods that name no ServiceAccount.
func createNamespace(t *testing.T, c *cluster, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	waitFor(t, "the default ServiceAccount in namespace "+name, time.Minute, func() (bool, error) {
		_, err := c.client.CoreV1().ServiceAccounts(name).Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil, err
	})
}

func createPod(t *testing.T, c *cluster, pod *corev1.Pod) {
	t.Helper()
	if _, err := c.client.CoreV1().Pods(pod.Namespace).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}

// waitForPodPhase waits until the pod is in one of phases and returns it. On timeout the failure
// names the pod's phase and why its containers are not running (e.g. ErrImageNeverPull).
func waitForPodPhase(t *testing.T, c *cluster, namespace, name string, timeout time.Duration, phases ...corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, fmt.Sprintf("pod %s/%s to be %v", namespace, name, phases), timeout, func() (bool, error) {
		var err error
		pod, err = c.client.CoreV1().Pods(namespace).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if slices.Contains(phases, pod.Status.Phase) {
			return true, nil
		}
		return false, fmt.Errorf("pod is %s", podSummary(pod))
	})
	return pod
}

// podSummary is the pod's phase and the state of each container that is not running.
func podSummary(pod *corev1.Pod) string {
	parts := []string{string(pod.Status.Phase)}
	for _, cs := range pod.Status.ContainerStatuses {
		switch s := cs.State; {
		case s.Waiting != nil:
			parts = append(parts, fmt.Sprintf("%s waiting: %s %s", cs.Name, s.Waiting.Reason, s.Waiting.Message))
		case s.Terminated != nil:
			parts = append(parts, fmt.Sprintf("%s terminated: %s (exit %d) %s", cs.Name, s.Terminated.Reason, s.Terminated.ExitCode, s.Terminated.Message))
		}
	}
	for _, cond := range pod.Status.Conditions {
		if cond.Status != corev1.ConditionTrue && cond.Message != "" {
			parts = append(parts, fmt.Sprintf("%s: %s", cond.Type, cond.Message))
		}
	}
	return strings.Join(parts, "; ")
}
