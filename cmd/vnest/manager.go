package main

import (
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/vnest-dev/vnest/cmd/internal/apiservercmd"
	"github.com/vnest-dev/vnest/manager"
)

func newManagerCommand() *cobra.Command {
	o := manager.NewOptions()
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the VirtualCluster operator: tenant PKI, storage, control planes, kubeconfigs, cleanup",
		Long: `manager reconciles VirtualCluster objects (tenancy.vnest.dev/v1alpha1) in the
super cluster until interrupted. For each one it sets up the tenant's etcd
access (with etcd auth on: a user and role limited to the tenant's prefix),
keeps the tenant PKI in the Secret NAME-pki, runs the control plane (local:
a 'vnest apiserver' child process of this manager, state in --state-dir;
cluster: a Deployment and Service in the VirtualCluster's namespace) and
writes the admin kubeconfig into the Secret NAME-kubeconfig. Deleting a
VirtualCluster removes its control plane, super-cluster namespaces, etcd keys,
user, role and Secrets (with spec.storage.etcd, the etcd ones only while its
credentials Secret exists: a Warning event says what was left).`,
		Example: `  vnest manager --kubeconfig .vnest/super.kubeconfig --state-dir .vnest/tenants \
    --etcd-servers https://127.0.0.1:2379 --etcd-cafile .vnest/pki/ca.crt \
    --etcd-certfile .vnest/pki/etcd-client.crt --etcd-keyfile .vnest/pki/etcd-client.key \
    --etcd-ca-keyfile .vnest/pki/ca.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrllog.SetLogger(klog.NewKlogr())
			return manager.Run(cmd.Context(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	apiservercmd.AddKlogVerbosityFlags(cmd.Flags())
	return cmd
}
