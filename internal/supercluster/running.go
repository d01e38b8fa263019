package supercluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/child"
	"github.com/vnest-dev/vnest/internal/images"
)

// running tracks what has been started so that stop can undo it in reverse.
type running struct {
	c          *config
	procs      []*child.Process // control plane and node components, in start order
	containerd *child.Process
	realNode   bool
	// vnestImage reports the import of the vnest image, which runs while the kubelet starts;
	// nil without a real node.
	vnestImage chan error
	// onExit is told why a child (containerd too) exited without being stopped.
	onExit func(error)
}

type startFunc func(name string, args []string) error
type waitFunc func(what string, cond func(context.Context) (bool, error)) error

// startRealNode starts containerd, makes sure the images of the kubelet and
// the demo are imported, then kubelet and kube-proxy; the vnest image (the
// cluster provisioner's, by far the largest) is imported meanwhile:
// waitVnestImage.
func (r *running) startRealNode(ctx context.Context, cs *certs, start startFunc, waitFor waitFunc) error {
	c := r.c
	if err := c.writeRealNodeConfig(cs); err != nil {
		return err
	}
	r.realNode = true
	if err := r.startContainerd(ctx, "containerd", waitFor); err != nil {
		return err
	}
	if err := c.ensureImages(ctx, images.PauseImage, images.BusyboxImage); err != nil {
		return err
	}
	r.vnestImage = make(chan error, 1)
	go func() { r.vnestImage <- c.ensureImages(ctx, images.VnestImage) }()
	if err := start("kubelet", c.kubeletArgs()); err != nil {
		return err
	}
	return start("kube-proxy", c.kubeProxyArgs())
}

// startContainerd starts containerd from binary and waits for its socket. Like every other
// child, containerd exiting on its own later is reported to onExit: the node's pods and the
// kubelet depend on it, and vnest up must not go on as if they ran.
func (r *running) startContainerd(ctx context.Context, binary string, waitFor waitFunc) error {
	c := r.c
	var err error
	r.containerd, err = startProcess(ctx, c.logDir(), "containerd", binary, c.containerdArgs(), r.onExit)
	if err != nil {
		return err
	}
	return waitFor("containerd", func(ctx context.Context) (bool, error) {
		select {
		case <-r.containerd.Done():
			return false, fmt.Errorf("containerd exited: %v; see %s", r.containerd.Err(), r.containerd.LogFile)
		default:
		}
		_, err := os.Stat(c.containerdSocket())
		return err == nil, nil
	})
}

// waitVnestImage waits until the vnest image started by startRealNode is
// imported, or a child dies (failed). Nothing to wait for without a real node.
func (r *running) waitVnestImage(ctx context.Context, failed <-chan error) error {
	if r.vnestImage == nil {
		return nil
	}
	select {
	case err := <-r.vnestImage:
		r.vnestImage = nil
		return err
	case err := <-failed:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop undoes start-up in reverse order and leaves no processes, mounts,
// pod networks or kube-proxy chains behind.
func (r *running) stop(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	c := r.c
	var errs []error
	const grace = 20 * time.Second
	// Node components first so nothing recreates what we tear down.
	for i := len(r.procs) - 1; i >= 0; i-- {
		p := r.procs[i]
		if p.Name != "kubelet" && p.Name != "kube-proxy" && p.Name != "kwok" {
			continue
		}
		errs = append(errs, p.Stop(grace))
	}
	if r.realNode {
		out, err := exec.CommandContext(ctx, c.binary, c.kubeProxyCleanupArgs()...).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %v: %s", err, out))
		}
		if r.containerd != nil {
			if err := c.removePodSandboxes(ctx); err != nil {
				errs = append(errs, err)
			}
			errs = append(errs, r.containerd.Stop(grace))
		}
		c.killShims()
		if err := unmountUnder(c.dataDir, c.runDir); err != nil {
			errs = append(errs, err)
		}
		deleteBridge()
		removeKubeletChains()
		_ = os.RemoveAll(c.runDir)
	}
	for i := len(r.procs) - 1; i >= 0; i-- {
		errs = append(errs, r.procs[i].Stop(grace))
	}
	logger.V(1).Info("Stopped super cluster")
	return errors.Join(errs...)
}
