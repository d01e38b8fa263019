package supercluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/images"
)

// ensureImages builds the local images refs (of pause, busybox, vnest) as
// tarballs in DIR/images and imports those that containerd lacks or has in
// another version. Nothing can be pulled on this machine, so the kubelet's
// (pause, and busybox for the demo's pods) must be there before it starts.
func (c *config) ensureImages(ctx context.Context, refs ...string) error {
	src := images.Sources{
		PauseBinary:   filepath.Join(filepath.Dir(c.binary), "pause"),
		BusyboxBinary: "/bin/busybox",
		VnestBinary:   c.binary,
		// What the cluster provisioner runs a tenant control plane from (images.ControlPlaneCommand).
		ControlPlaneBinary: layout.ControlPlaneBinary(c.binary),
	}
	if _, err := os.Stat(src.PauseBinary); err != nil {
		return fmt.Errorf("the pause binary must sit next to vnest (%s); run `make build`: %w", src.PauseBinary, err)
	}
	built, err := images.Build(ctx, c.path("images"), src, refs...)
	if err != nil {
		return fmt.Errorf("building local images: %w", err)
	}
	for _, ref := range refs {
		if _, err := images.EnsureImported(ctx, c.containerdSocket(), built[ref]); err != nil {
			return fmt.Errorf("importing %s: %w", ref, err)
		}
	}
	klog.FromContext(ctx).V(1).Info("Local images present", "images", refs)
	return nil
}
