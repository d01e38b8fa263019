package main

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/vnest-dev/vnest/cmd/internal/apiservercmd"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "vnest",
		Short:         "Virtual Kubernetes clusters for tenants on one shared super cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCommand(), newImagesCommand(), apiservercmd.New(), newManagerCommand(), newSyncerCommand(), newConformanceCommand())
	root.AddCommand(newTenantCommands()...)
	names := make([]string, 0, len(components))
	for name := range components {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		// Listed for help only: main dispatches these before cobra runs.
		root.AddCommand(&cobra.Command{
			Use:                name,
			Short:              "Run the upstream " + name + " (v1.36.3) with its own flags",
			DisableFlagParsing: true,
			Run:                func(*cobra.Command, []string) {},
		})
	}
	return root
}
