package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/images"
)

func newImagesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build the local images as tarballs and import them into containerd (no Docker, no registry)",
	}
	cmd.AddCommand(newImagesBuildCommand(), newImagesImportCommand())
	return cmd
}

func newImagesBuildCommand() *cobra.Command {
	self, _ := os.Executable()
	src := images.Sources{
		PauseBinary:   filepath.Join(filepath.Dir(self), "pause"),
		BusyboxBinary: images.DefaultBusyboxBinary,
		VnestBinary:   self,
		// The control plane alone beside vnest when `make build` made it (else a link to vnest).
		ControlPlaneBinary: layout.ControlPlaneBinary(self),
	}
	var out string
	cmd := &cobra.Command{
		Use:   "build [REF...]",
		Short: "Build image tarballs (default: all of " + images.PauseImage + ", " + images.BusyboxImage + ", " + images.VnestImage + ")",
		RunE: func(cmd *cobra.Command, refs []string) error {
			if len(refs) == 0 {
				refs = []string{images.PauseImage, images.BusyboxImage, images.VnestImage}
			}
			built, err := images.Build(cmd.Context(), out, src, refs...)
			if err != nil {
				return err
			}
			sorted := make([]string, 0, len(built))
			for ref := range built {
				sorted = append(sorted, ref)
			}
			sort.Strings(sorted)
			for _, ref := range sorted {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", ref, built[ref])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "_output/images", "Directory for the tarballs")
	cmd.Flags().StringVar(&src.PauseBinary, "pause-binary", src.PauseBinary, "Static pause binary (bin/pause)")
	cmd.Flags().StringVar(&src.BusyboxBinary, "busybox-binary", src.BusyboxBinary, "Static busybox (Debian busybox-static)")
	cmd.Flags().StringVar(&src.VnestBinary, "vnest-binary", src.VnestBinary, "vnest binary for "+images.VnestImage)
	cmd.Flags().StringVar(&src.ControlPlaneBinary, "control-plane-binary", src.ControlPlaneBinary, "vnest-apiserver binary for "+images.VnestImage+" as "+images.ControlPlaneCommand+" (the vnest binary: a link to vnest instead)")
	return cmd
}

func newImagesImportCommand() *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use:   "import TARBALL...",
		Short: "Import image tarballs into containerd (namespace k8s.io) unless already present with the same digest",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, tarballs []string) error {
			for _, t := range tarballs {
				imported, err := images.EnsureImported(cmd.Context(), address, t)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\timported=%v\n", t, imported)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&address, "address", "/run/containerd/containerd.sock", "containerd socket (vnest up uses /run/vnest/<id>/containerd.sock)")
	return cmd
}
