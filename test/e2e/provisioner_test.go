package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/images"
)

// TestClusterProvisioner runs a tenant control plane as a pod of the real-node super cluster
// (image vnest.local/vnest:dev), uses its kubeconfig from the host through the tenant's Service,
// and deletes it again: nothing of it may be left in the super cluster.
func TestClusterProvisioner(t *testing.T) {
	requireRoot(t)
	c := startCluster(t, clusterOptions{nodes: "real", port: 16803, extraArgs: []string{"--no-tenant", "--no-syncer"}})

	vnest := func(timeout time.Duration, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		args = append(args, "--kubeconfig", c.kubeconfig)
		out, err := exec.CommandContext(ctx, vnestBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("vnest %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	vnest(4*time.Minute, "create", "pod-cp", "--provisioner", "cluster", "--wait", "--timeout", "3m")

	pods, err := c.client.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Spec.Containers[0].Image != "vnest.local/vnest:dev" {
		t.Fatalf("want one control-plane pod running vnest.local/vnest:dev, got %d pods", len(pods.Items))
	}
	// It runs the control plane alone, which `make build` made beside vnest and the image holds
	// as a copy: the process's executable is that file, not vnest behind a link.
	if exe := layout.ControlPlaneBinary(vnestBin); exe == vnestBin {
		t.Logf("no %s beside %s: the image links it to vnest", layout.ControlPlaneBinaryName, vnestBin)
	} else if got := processExecutables("/var/lib/vnest"); len(got) == 0 || slices.ContainsFunc(got, func(exe string) bool { return exe != images.ControlPlaneCommand }) {
		t.Errorf("control-plane pod processes run %q, want %s", got, images.ControlPlaneCommand)
	}

	kubeconfig := filepath.Join(t.TempDir(), "pod-cp.kubeconfig")
	vnest(time.Minute, "kubeconfig", "pod-cp", "-o", kubeconfig)
	out, err := exec.CommandContext(t.Context(), vnestBin, "kubectl", "--kubeconfig", kubeconfig, "create", "configmap", "hello", "--from-literal=a=b").CombinedOutput()
	if err != nil {
		t.Fatalf("using the tenant kubeconfig: %v: %s", err, out)
	}

	vnest(3*time.Minute, "delete", "pod-cp", "--wait")
	waitFor(t, "the control plane's pods, Services and Secrets to go", 2*time.Minute, func() (bool, error) {
		pods, err := c.client.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		secrets, err := c.client.CoreV1().Secrets("default").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		svcs, err := c.client.CoreV1().Services("default").List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		// The `kubernetes` Service is the super cluster's own.
		left := len(pods.Items) + len(secrets.Items) + len(svcs.Items) - 1
		return left == 0, fmt.Errorf("%d pods, %d secrets, %d services left", len(pods.Items), len(secrets.Items), len(svcs.Items)-1)
	})
}

// processExecutables returns the executables (/proc/PID/exe, as the process's mount namespace
// names them) of the processes whose command line mentions dir (processesMentioning).
func processExecutables(dir string) []string {
	var exes []string
	for pid := range processesMentioning(dir) {
		if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe")); err == nil {
			exes = append(exes, exe)
		}
	}
	return exes
}
