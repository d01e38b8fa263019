package supercluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/pki"
	"github.com/vnest-dev/vnest/internal/syncerlease"
)

// readyTimeout bounds each start-up wait; the first real-mode start imports
// images and is the slowest.
const readyTimeout = 5 * time.Minute

// demoTenant is the VirtualCluster `vnest up` creates in namespace default.
const demoTenant = "demo"

// Run starts the super cluster and blocks until ctx is cancelled, then stops
// everything it started. It returns an error when start-up fails or when a
// component dies while running.
func Run(ctx context.Context, o *Options) error {
	c, err := o.Complete()
	if err != nil {
		return err
	}
	err = c.run(ctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // stopped on request while still starting
	}
	return err
}

// SuperKubeconfig is the path of the admin kubeconfig inside a data dir.
func SuperKubeconfig(dataDir string) string { return filepath.Join(dataDir, "super.kubeconfig") }

func (c *config) run(ctx context.Context) (err error) {
	logger := klog.FromContext(ctx)
	unlock, err := lockDataDir(c.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	kubeconfig := SuperKubeconfig(c.dataDir)
	if err := os.Remove(kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	nodesNote := c.mode
	if c.mode == NodesSimulated {
		nodesNote += " (kwok: pods are not really run)"
	}
	fmt.Fprintf(c.Out, "vnest: starting super cluster in %s; nodes: %s, because %s\n", c.dataDir, nodesNote, c.modeWhy)

	cs, err := c.ensureCerts()
	if err != nil {
		return err
	}
	if err := c.writeKubeconfigs(cs); err != nil {
		return err
	}
	if err := os.MkdirAll(c.logDir(), 0o755); err != nil {
		return err
	}
	etcd, err := c.startEtcd(ctx, cs)
	if err != nil {
		return err
	}
	defer etcd.Close()

	// A child dying while we run is fatal: report it instead of hanging.
	failed := make(chan error, 1)
	onExit := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	r := &running{c: c, onExit: onExit}
	defer func() {
		if stopErr := r.stop(context.WithoutCancel(ctx)); stopErr != nil {
			logger.Error(stopErr, "Clean shutdown was incomplete")
			err = errors.Join(err, stopErr)
		}
	}()
	start := func(name string, args []string) error {
		p, err := startProcess(ctx, c.logDir(), name, c.binary, args, onExit)
		if err == nil {
			r.procs = append(r.procs, p)
		}
		return err
	}
	// waitFor polls cond until it holds, failing early when a child died.
	waitFor := func(what string, cond func(context.Context) (bool, error)) error {
		wctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		var last error
		err := wait.PollUntilContextCancel(wctx, time.Second, true, func(ctx context.Context) (bool, error) {
			select {
			case err := <-failed:
				return false, err
			default:
			}
			ok, err := cond(ctx)
			last = err
			return ok, nil
		})
		if err != nil && ctx.Err() == nil {
			if last != nil && wctx.Err() != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, err, last)
			}
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		return err
	}

	if err := start("kube-apiserver", c.apiserverArgs(cs)); err != nil {
		return err
	}
	client, err := clientFor(c.kubeconfigPath("admin"))
	if err != nil {
		return err
	}
	if err := waitFor("kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	}); err != nil {
		return err
	}
	if err := start("kube-controller-manager", c.controllerManagerArgs(cs)); err != nil {
		return err
	}
	if err := start("kube-scheduler", c.schedulerArgs()); err != nil {
		return err
	}

	if os.Geteuid() == 0 {
		raiseInotifyInstances(ctx) // nodes and tenant control planes each hold several
	}
	if c.mode == NodesReal {
		if err := r.startRealNode(ctx, cs, start, waitFor); err != nil {
			return err
		}
	} else {
		stages, err := c.writeKwokConfig()
		if err != nil {
			return err
		}
		if err := start("kwok", c.kwokArgs(stages)); err != nil {
			return err
		}
		if err := ensureSimNodes(ctx, client, c.NodeCount); err != nil {
			return err
		}
	}
	if err := waitFor(fmt.Sprintf("%d Ready node(s)", c.NodeCount), func(ctx context.Context) (bool, error) {
		return nodesReady(ctx, client, c.NodeCount)
	}); err != nil {
		return err
	}
	// Pods are only admitted once the namespace's default service account exists.
	if err := waitFor("the default service account", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		return err
	}

	// Ready means the cluster provisioner can run control planes too.
	if err := r.waitVnestImage(ctx, failed); err != nil {
		return err
	}
	if err := pki.WriteKubeconfig(kubeconfig, pki.Kubeconfig{
		Name: "vnest-super", Server: c.localServer(), CA: cs.ca.CertPEM(), Client: cs.admin,
	}); err != nil {
		return err
	}
	fmt.Fprintf(c.Out, "vnest: super cluster ready (%d %s node(s)); kubeconfig: %s\n", c.NodeCount, c.mode, kubeconfig)
	fmt.Fprintf(c.Out, "vnest:   export KUBECONFIG=%s; kubectl get nodes   (Ctrl-C stops the cluster)\n", kubeconfig)

	// vnest itself on top: the operator, and a demo tenant.
	cl, err := newTenantClient(c.kubeconfigPath("admin"))
	if err != nil {
		return err
	}
	if err := installCRDs(ctx, cl, waitFor); err != nil {
		return err
	}
	// Also with --no-syncer: a syncer a test runs itself writes its Lease there.
	if err := ensureNamespace(ctx, client, syncerlease.DefaultNamespace); err != nil {
		return err
	}
	if !c.NoManager {
		if err := start("manager", c.managerArgs(cs)); err != nil {
			return err
		}
	}
	if !c.NoSyncer {
		if err := start("syncer", c.syncerArgs()); err != nil {
			return err
		}
	}
	if !c.NoTenant && !c.NoManager {
		demo := filepath.Join(c.dataDir, demoTenant+".kubeconfig")
		if err := os.Remove(demo); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		data, err := ensureDemoTenant(ctx, cl, demoTenant, waitFor)
		if err != nil {
			return err
		}
		// Written aside and renamed: whoever sees the file sees all of it.
		if err := os.WriteFile(demo+".tmp", data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(demo+".tmp", demo); err != nil {
			return err
		}
		fmt.Fprintf(c.Out, "vnest: tenant %q ready; kubeconfig: %s\n", demoTenant, demo)
		fmt.Fprintf(c.Out, "vnest:   kubectl --kubeconfig %s get namespaces\n", demo)
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(c.Out, "vnest: stopping")
		return nil
	case err := <-failed:
		return err
	}
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

func nodesReady(ctx context.Context, client kubernetes.Interface, want int) (bool, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready >= want, nil
}

// lockDataDir makes sure only one vnest up uses a data dir at a time.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "vnest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(f.Name())
		f.Close()
		return nil, fmt.Errorf("--data-dir %s is in use by another vnest up (pid %s)", dir, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
