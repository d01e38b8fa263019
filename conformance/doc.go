// Package conformance runs the upstream Kubernetes conformance suite
// (the [Conformance] specs of k8s.io/kubernetes/test/e2e, v1.36.3) against a
// cluster — a tenant, or the super cluster as the baseline — and judges the
// result against conformance/expectations.yaml.
//
// It owns:
//   - the run: the e2e test binary built from module source
//     (./conformance/e2e) under the ginkgo CLI, with the image registry
//     overridden (KUBE_TEST_REPO_LIST) to images built here;
//   - the images the suite needs (agnhost and friends), built as tarballs
//     from Go module source and Debian binaries and imported into a node's
//     containerd, since nothing can be pulled;
//   - the verdict: JUnit → per-test results → a summary (passed, failed,
//     skipped with reasons) compared with the expectations, all in pure
//     functions.
//
// It must not change the cluster under test beyond what the suite itself
// does, and it never touches the syncer or the tenant control plane: a
// failing test is a finding, recorded in expectations.yaml with its cause.
package conformance
