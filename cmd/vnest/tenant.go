package main

import (
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/manager/tenantctl"
)

// superFlags are how the tenant commands reach the super cluster.
type superFlags struct {
	kubeconfig, namespace string
}

func (f *superFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Kubeconfig of the super cluster. Default: $KUBECONFIG, then ~/.kube/config.")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "Namespace of the virtual cluster in the super cluster. Default: the kubeconfig context's, else default.")
}

// run connects to the super cluster and calls do with the namespace to use.
func (f *superFlags) run(cmd *cobra.Command, do func(c client.Client, namespace string) error) error {
	c, ns, err := tenantctl.Connect(f.kubeconfig, f.namespace)
	if err != nil {
		return err
	}
	return do(c, ns)
}

func newTenantCommands() []*cobra.Command {
	return []*cobra.Command{newCreateCommand(), newDeleteCommand(), newListCommand(), newKubeconfigCommand()}
}

func newCreateCommand() *cobra.Command {
	var f superFlags
	o := tenantctl.CreateOptions{Timeout: 3 * time.Minute}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a virtual cluster (a VirtualCluster object in the super cluster)",
		Example: `  vnest create team-a --wait
  vnest create team-b -n tenants --provisioner cluster`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(c client.Client, ns string) error {
				o.Name, o.Namespace = args[0], ns
				return tenantctl.Create(cmd.Context(), c, o, cmd.OutOrStdout())
			})
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&o.Provisioner, "provisioner", "", "Where the control plane runs: local (a process next to the manager) or cluster (a pod in the super cluster). Default: local.")
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "Wait until the virtual cluster is Running, or Failed (a failure that needs a fix; one that may pass by itself is waited through).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long --wait waits; 0 looks once. Failed reads of the virtual cluster are retried until then.")
	return cmd
}

func newDeleteCommand() *cobra.Command {
	var f superFlags
	o := tenantctl.DeleteOptions{Timeout: 3 * time.Minute}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a virtual cluster with its control plane, super-cluster objects and etcd data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(c client.Client, ns string) error {
				o.Name, o.Namespace = args[0], ns
				return tenantctl.Delete(cmd.Context(), c, o, cmd.OutOrStdout())
			})
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "Wait until everything of the virtual cluster is gone (the one deleted: a new one of its name does not count).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long --wait waits; 0 looks once. Failed reads of the virtual cluster are retried until then.")
	return cmd
}

func newListCommand() *cobra.Command {
	var f superFlags
	var o tenantctl.ListOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List virtual clusters: NAME PHASE PROVISIONER ENDPOINT AGE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(c client.Client, ns string) error {
				o.Namespace = ns
				return tenantctl.List(cmd.Context(), c, o, cmd.OutOrStdout(), cmd.ErrOrStderr(), time.Now())
			})
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "List the virtual clusters of every namespace.")
	return cmd
}

func newKubeconfigCommand() *cobra.Command {
	var f superFlags
	var o tenantctl.KubeconfigOptions
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME",
		Short: "Print (or write with -o) the admin kubeconfig of a virtual cluster",
		Example: `  vnest kubeconfig team-a > team-a.kubeconfig
  vnest kubeconfig team-a -o team-a.kubeconfig && kubectl --kubeconfig team-a.kubeconfig get ns`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, func(c client.Client, ns string) error {
				o.Name, o.Namespace = args[0], ns
				return tenantctl.Kubeconfig(cmd.Context(), c, o, cmd.OutOrStdout())
			})
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Write the kubeconfig to this file (mode 0600, replaced whole: a failed write keeps the old one; a symlink stays one) instead of printing it.")
	return cmd
}
