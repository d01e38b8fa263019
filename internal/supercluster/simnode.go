package supercluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

// Simulated nodes are Node objects that kwok keeps alive: it answers their
// heartbeats (leases) and moves pods bound to them through their lifecycle
// with the "fast" stages (Running right away, fake pod IPs).
const (
	kwokAnnotation = "kwok.x-k8s.io/node"
	kwokValue      = "fake"
	simNodeLabel   = "vnest.dev/simulated-node"
)

func (c *config) writeKwokConfig() (string, error) {
	file := c.path("kwok", "stages.yaml")
	stages := []string{nodefast.DefaultNodeInit, nodeheartbeat.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady, podfast.DefaultPodComplete, podfast.DefaultPodDelete}
	if err := os.MkdirAll(c.path("kwok"), 0o755); err != nil {
		return "", err
	}
	return file, os.WriteFile(file, []byte(strings.Join(stages, "\n---\n")), 0o644)
}

func (c *config) kwokArgs(stagesFile string) []string {
	return []string{
		"kwok",
		"--config=" + stagesFile,
		"--kubeconfig=" + c.kubeconfigPath("kwok"),
		"--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=" + kwokValue,
		"--cidr=" + podCIDR,
		"--node-ip=" + c.hostIP.String(),
		"--server-address=127.0.0.1:" + strconv.Itoa(c.ports.Kwok),
		"--node-lease-duration-seconds=40",
	}
}

func simNodeName(i int) string { return fmt.Sprintf("vnest-sim-%d", i) }

// simNode is the Node object kwok takes over; capacity is generous so that
// scale tests are limited by the control plane, not by fake resources.
func simNode(i int) *corev1.Node {
	name := simNodeName(i)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokAnnotation: kwokValue},
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok", simNodeLabel: "true",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

// ensureSimNodes makes exactly count simulated nodes exist.
func ensureSimNodes(ctx context.Context, cs kubernetes.Interface, count int) error {
	for i := range count {
		if _, err := cs.CoreV1().Nodes().Create(ctx, simNode(i), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating simulated node %s: %w", simNodeName(i), err)
		}
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: simNodeLabel + "=true"})
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for i := range count {
		wanted[simNodeName(i)] = true
	}
	for _, n := range nodes.Items {
		if !wanted[n.Name] {
			if err := cs.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("removing extra simulated node %s: %w", n.Name, err)
			}
		}
	}
	return nil
}
