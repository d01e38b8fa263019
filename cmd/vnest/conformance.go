package main

import (
	"github.com/spf13/cobra"

	"github.com/vnest-dev/vnest/conformance"
)

func newConformanceCommand() *cobra.Command {
	var o conformance.Options
	cmd := &cobra.Command{
		Use:   "conformance --kubeconfig FILE",
		Short: "Run the upstream Kubernetes [Conformance] tests against a cluster and judge them against the expectations",
		Long: `conformance runs the [Conformance] specs of the upstream e2e suite (v1.36.3,
bin/e2e.test built by 'make conformance-build') against the cluster of --kubeconfig — a
tenant, or the super cluster for the baseline — and writes the JUnit report,
summary.txt and summary.json into --artifacts. It fails when a test that is not
in --expectations fails, and lists the listed tests that now pass.

With --super-data-dir (a real-node 'vnest up' data dir) or --containerd, it
first builds the images the suite needs (agnhost, kitten, nautilus, nginx,
nonewprivs, sample-apiserver, etcd) and imports them into that node's
containerd; the suite finds them through KUBE_TEST_REPO_LIST under
vnest.local.

On a vnest tenant it first runs a pause pod for the whole run, so that a
virtual Node is always there, and briefly a privileged host-network pod: a
tenant whose VirtualCluster's spec.policy.podSecurityLevel refuses it fails the
run at once (--allow-unprivileged runs it anyway). See docs/conformance.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			_, err := o.Run(cmd.Context())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster under test (required)")
	f.StringVar(&o.Focus, "focus", "", "only run conformance tests whose name matches this regexp")
	f.StringVar(&o.Skip, "skip", "", "leave out conformance tests whose name matches this regexp")
	f.IntVar(&o.Parallel, "parallel", 1, "ginkgo processes; [Serial] tests run alone at the end")
	f.StringVar(&o.Artifacts, "artifacts", "_output/conformance", "directory for the JUnit report, summary and logs")
	f.DurationVar(&o.Timeout, "timeout", 0, "timeout of the whole suite (default 3h)")
	f.StringVar(&o.Expectations, "expectations", "conformance/expectations.yaml", "tests expected not to pass, with reasons; empty expects all to pass")
	f.BoolVar(&o.AllowUnprivileged, "allow-unprivileged", false, "run even when the tenant refuses privileged pods (its host-network, hostPort and privileged tests then fail)")
	f.StringVar(&o.E2EBinary, "e2e-binary", "", "the e2e test binary (default: e2e.test next to vnest)")
	f.StringVar(&o.Ginkgo, "ginkgo", "", "the ginkgo CLI (default: ginkgo next to vnest)")
	f.StringVar(&o.SuperDataDir, "super-data-dir", "", "data dir of the real-node 'vnest up' whose containerd gets the images")
	f.StringVar(&o.Containerd, "containerd", "", "containerd socket to import the images into (instead of --super-data-dir)")
	f.StringVar(&o.ImageDir, "image-dir", "", "where the image tarball is built (default: ARTIFACTS/images)")
	return cmd
}
