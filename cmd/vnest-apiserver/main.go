// Command vnest-apiserver is `vnest apiserver` alone: a tenant control plane
// in a binary that links only what the control plane needs. Every package
// linked into a Go binary runs its init and keeps what that allocates, and
// the vnest binary also links the kubelet, the scheduler, kwok, etcd, kubectl,
// the syncer and the manager; an idle tenant run from this binary measured
// ~10 MiB less RSS (docs/benchmarks.md, session 20: ~8 MiB fewer pages of the
// executable mapped, 0–4 MiB less of its own memory). The local provisioner
// runs it when it stands beside the vnest binary
// (apiserver/layout.ControlPlaneBinary); its command line is vnest's:
// `vnest-apiserver apiserver --state-dir ...`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vnest-dev/vnest/cmd/internal/apiservercmd"
	"github.com/vnest-dev/vnest/cmd/internal/stopsignal"
)

func main() {
	ctx, stop := stopsignal.Context(context.Background())
	defer stop()
	root := &cobra.Command{
		Use:           "vnest-apiserver",
		Short:         "A vnest tenant control plane: `vnest-apiserver apiserver` is `vnest apiserver`",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(apiservercmd.New())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vnest-apiserver:", err)
		os.Exit(1)
	}
}
