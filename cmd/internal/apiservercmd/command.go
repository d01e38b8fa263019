package apiservercmd

import (
	goflag "flag"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/apiserver"
)

// New is the `apiserver` command.
func New() *cobra.Command {
	o := apiserver.NewOptions()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run a tenant control plane (kube-apiserver + the tenant's controllers) in one process",
		Long: `apiserver runs one tenant's whole control plane in this process until
interrupted: the upstream kube-apiserver (v1.36.3) storing everything in etcd
under --etcd-prefix, and the kube-controller-manager controllers a tenant needs
(no scheduler, no node, volume or cloud controllers: the super cluster owns
those). Missing PKI files in --pki-dir (default --state-dir) are created, so
--state-dir and --etcd-prefix are enough for development against an etcd on
127.0.0.1:2379. In --state-dir the PKI is the process's own: its leaf
certificates that expire within 30 days are renewed at start and every 12h. STATE_DIR/admin.kubeconfig appears once /readyz answers 200
and is removed when the process stops. SIGINT, SIGTERM and SIGHUP stop the controllers,
then the apiserver; a stop during start-up waits until the apiserver is ready.`,
		Example: `  vnest apiserver --state-dir /tmp/t1 --etcd-prefix /vnest/tenants/t1 \
    --etcd-servers https://127.0.0.1:2379 --etcd-cafile ca.crt --etcd-certfile c.crt --etcd-keyfile c.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return apiserver.Run(cmd.Context(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	AddKlogVerbosityFlags(cmd.Flags()) // the upstream components log through klog
	return cmd
}

// AddKlogVerbosityFlags exposes klog's -v and -vmodule, the only logging
// flags vnest's own commands offer.
func AddKlogVerbosityFlags(fs *pflag.FlagSet) {
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.AddGoFlag(klogFlags.Lookup(name))
	}
}
