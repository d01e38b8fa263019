package conformance

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSuitePathsAreAbsolute: ginkgo runs the suite in the e2e binary's directory, so the paths
// the suite gets must not depend on the working directory (make conformance passes relative ones).
func TestSuitePathsAreAbsolute(t *testing.T) {
	o := Options{Kubeconfig: ".vnest/demo.kubeconfig", Artifacts: "_output/conformance", E2EBinary: "bin/e2e.test", Ginkgo: "bin/ginkgo"}
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	args := append(o.ginkgoArgs(), o.Ginkgo, o.ImageDir)
	for _, want := range []string{"--kubeconfig=/", "--report-dir=/"} {
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, want) }) {
			t.Errorf("suite arguments %q: no %s…", args, want)
		}
	}
	for _, p := range []string{o.E2EBinary, o.Ginkgo, o.ImageDir} {
		if !filepath.IsAbs(p) {
			t.Errorf("path %q is relative", p)
		}
	}
}
