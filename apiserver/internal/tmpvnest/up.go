package main

import (
	"github.com/spf13/cobra"

	"github.com/vnest-dev/vnest/internal/supercluster"
)

func newUpCommand() *cobra.Command {
	o := supercluster.NewOptions()
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a local super cluster (etcd, control plane, real or simulated nodes) in the foreground",
		Long: `up runs a complete local super cluster until interrupted: embedded etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and either a real node
(kubelet, containerd, runc, CNI bridge, kube-proxy) or kwok-simulated nodes.
It writes DATA_DIR/super.kubeconfig once the cluster is usable. Running it again
on the same data dir keeps every object.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return supercluster.Run(cmd.Context(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
