package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/conformance"
)

// conformancePort is the base port of TestConformanceSubset.
const conformancePort = 19003

// conformanceSubset is the CI share of the upstream [Conformance] suite, one or two quick tests
// per area so that a regression anywhere a tenant can break shows up in `make test`: API
// machinery, apps, pods, services, DNS (and a pod's own name), node labels and taints set in
// the tenant, configMap and secret volumes, service accounts and authorization
// (SubjectAccessReview; the suite has no RBAC-specific conformance test). The full suite is
// `make conformance` (docs/conformance.md).
var conformanceSubset = []string{
	"[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition creating/deleting custom resource definition objects works [Conformance]",
	"[sig-api-machinery] Watchers should be able to restart watching from the last resource version observed by the previous watch [Conformance]",
	"[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones [Conformance]",
	"[sig-apps] ReplicaSet should serve a basic image on each replica with a public image [Conformance]",
	"[sig-node] Pods should get a host IP [NodeConformance] [Conformance]",
	"[sig-node] Downward API should provide pod name, namespace and IP address as env vars [NodeConformance] [Conformance]",
	"[sig-network] Services should serve a basic endpoint from pods [Conformance]",
	"[sig-network] DNS should provide DNS for the cluster [Conformance]",
	"[sig-network] DNS should provide /etc/hosts entries for the cluster [Conformance]",
	"[sig-scheduling] SchedulerPredicates [Serial] validates that NodeSelector is respected if matching [Conformance]",
	"[sig-node] NoExecuteTaintManager Multiple Pods [Serial] evicts pods with minTolerationSeconds [Disruptive] [Conformance]",
	"[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance] [Conformance]",
	"[sig-storage] Secrets should be consumable from pods in volume [NodeConformance] [Conformance]",
	"[sig-auth] ServiceAccounts should mount projected service account token [Conformance]",
	"[sig-auth] ServiceAccounts should mount an API token into pods [Conformance]",
	"[sig-auth] SubjectReview should support SubjectReview API operations [Conformance]",
}

// subsetBudget bounds the subset run, image build and import included.
const subsetBudget = 20 * time.Minute

// TestConformanceSubset runs conformanceSubset with `vnest conformance` against the demo tenant
// of a real-node super cluster, images built and imported by the runner. Every subset test must
// run, and every one must pass unless conformance/expectations.yaml lists it. Before, the runner
// must refuse the demo tenant at its default Pod Security level; the subset then runs at
// privileged, as in `make conformance`.
func TestConformanceSubset(t *testing.T) {
	requireRoot(t)
	for _, bin := range []string{"e2e.test", "ginkgo", "agnhost", "nnp", "sample-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(vnestBin), bin)); err != nil {
			t.Fatalf("%v: run `make conformance-build` first", err)
		}
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	expectationsFile := filepath.Join(root, "conformance", "expectations.yaml")
	exp, err := conformance.LoadExpectations(expectationsFile)
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, clusterOptions{nodes: "real", port: conformancePort})
	_, kubeconfig := waitForDemoTenant(t, c)

	// The demo tenant's default Pod Security level, baseline, refuses the privileged pods part of
	// the suite needs: the runner says so at once, before it builds any image.
	stderr, took, err := runVnest(t, 5*time.Minute, "conformance", "--kubeconfig", kubeconfig,
		"--artifacts", filepath.Join(c.dataDir, "conformance-refused"), "--expectations", expectationsFile)
	if err == nil || !strings.Contains(stderr, v1alpha1.PodReasonSecurityViolation) || !strings.Contains(stderr, "spec.policy.podSecurityLevel") {
		t.Errorf("vnest conformance on a baseline tenant: %v after %v; want a failure naming %s and spec.policy.podSecurityLevel\nstderr:\n%s",
			err, took.Round(time.Second), v1alpha1.PodReasonSecurityViolation, lastLines(stderr, 20))
	}
	t.Logf("vnest conformance refused the baseline tenant after %v", took.Round(time.Millisecond))
	patchDemo(t, c, `{"spec":{"policy":{"podSecurityLevel":"privileged"}}}`) // as make conformance does

	// Anchored at the end only: ginkgo matches against a text that does not start with the name.
	quoted := make([]string, len(conformanceSubset))
	for i, name := range conformanceSubset {
		quoted[i] = regexp.QuoteMeta(name)
	}
	artifacts := filepath.Join(c.dataDir, "conformance")
	stderr, took, err = runVnest(t, subsetBudget, "conformance", "--kubeconfig", kubeconfig,
		"--super-data-dir", c.dataDir, "--focus", "("+strings.Join(quoted, "|")+")$", "--parallel", "3",
		"--artifacts", artifacts, "--image-dir", filepath.Join(c.dataDir, "conformance-images"),
		"--expectations", expectationsFile, "--timeout", "15m")
	t.Logf("vnest conformance on %d tests took %v", len(conformanceSubset), took.Round(time.Second))
	text, _ := os.ReadFile(filepath.Join(artifacts, "summary.txt"))
	if err != nil {
		t.Errorf("vnest conformance: %v\nsummary:\n%s\nstderr:\n%s", err, text, lastLines(stderr, 50))
	}
	var s conformance.Summary
	data, err := os.ReadFile(filepath.Join(artifacts, "summary.json"))
	if err != nil {
		t.Fatalf("no summary: %v", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	t.Logf("Subset: passed %d, failed %d, skipped %d", s.Passed, s.Failed, s.Skipped)
	listed := map[string]bool{}
	for _, e := range exp.Tests {
		listed[e.Test] = true
	}
	wantPassed := 0
	for _, name := range conformanceSubset {
		if !listed[name] {
			wantPassed++
		}
	}
	if ran := s.Passed + s.Failed + s.Skipped; ran != len(conformanceSubset) || s.Passed < wantPassed {
		t.Errorf("the subset ran %d tests, %d passed; want all %d to run and at least %d (those not in the expectations) to pass\n%s",
			ran, s.Passed, len(conformanceSubset), wantPassed, text)
	}
}

// lastLines is the tail of s, at most n lines.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
