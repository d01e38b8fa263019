package main

import (
	goflag "flag"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/vnest-dev/vnest/syncer"
)

func newSyncerCommand() *cobra.Command {
	o := syncer.NewOptions()
	cmd := &cobra.Command{
		Use:   "syncer",
		Short: "Run the syncer: tenant objects down into the super cluster, status back up",
		Long: `syncer serves every VirtualCluster of the super cluster until interrupted. For each
Running one it reads the tenant kubeconfig from the Secret NAME-kubeconfig, watches the
tenant apiserver and copies namespaces, pods, services, endpoints of selector-less
services, and the secrets and configmaps pods use into the super namespaces
CLUSTERKEY-NAMESPACE; pod status, node assignment, service load balancers and virtual
nodes flow back up. A fair queue shares the workers between tenants; a patrol every
--resync repairs drift and deletes orphans.`,
		Example: `  vnest syncer --kubeconfig .vnest/super.kubeconfig --workers 8 --metrics-bind-address 127.0.0.1:8085`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// controller-runtime's metrics server and its review filter log through it.
			ctrllog.SetLogger(klog.NewKlogr())
			return syncer.Run(klog.NewContext(cmd.Context(), klog.NewKlogr()), o)
		},
	}
	o.AddFlags(cmd.Flags())
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		cmd.Flags().AddGoFlag(klogFlags.Lookup(name))
	}
	return cmd
}
