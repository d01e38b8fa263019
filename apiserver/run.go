package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/apiserver/vapstatus"
	"github.com/vnest-dev/vnest/internal/pki"
)

// readyTimeout bounds the wait for /readyz; a tenant normally gets there in
// a few seconds, and an unreachable etcd should fail the process rather than
// leave it hanging.
const readyTimeout = 3 * time.Minute

// running guards against a second control plane in this process.
var running atomic.Bool

// Run completes and validates o and runs the control plane until ctx is done.
func Run(ctx context.Context, o *Options) error {
	c, err := o.Complete()
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	return c.Run(ctx)
}

// Run serves the tenant control plane until ctx is done or a component
// fails: kube-apiserver first, the controllers once it is ready, then
// admin.kubeconfig. It returns nil after a stop through ctx.
//
// One control plane runs in a process at a time: kube-controller-manager
// registers process-wide names (its informer factory's metrics name, its
// configz entry) that a second one running at the same time cannot take.
// One after the other works, though upstream leaves a few etcd clients
// behind after a stop.
func (c CompletedConfig) Run(ctx context.Context) error {
	if !running.CompareAndSwap(false, true) {
		return errors.New("a tenant control plane already runs in this process; run one per process")
	}
	defer running.Store(false)
	logger := klog.FromContext(ctx)
	start := time.Now()
	memoryReady, restoreMemoryLimit := c.setMemoryLimits(logger)
	defer restoreMemoryLimit()
	// Loopback clients must not log the warnings they cause themselves; this
	// is process-wide, as in the upstream commands.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	// admin.kubeconfig means "ready": it goes when Run returns, and one left
	// by a crashed run goes now.
	admin := filepath.Join(c.stateDir, layout.AdminKubeconfigFile)
	if err := os.Remove(admin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale %s: %w", admin, err)
	}
	defer os.Remove(admin)
	if c.ownsPKI() {
		c.renewPKI(logger, false) // a restart after a lapse renews what expired meanwhile
	}
	// The controllers read their certificate from its files, not from the kubeconfig: they take
	// up a renewed one as they run.
	if err := c.writeKubeconfig(layout.ControllerManagerKubeconfigFile, c.loopbackServer(), c.pki.ControllerManager, true); err != nil {
		return err
	}
	if err := c.writeClientCABundle(); err != nil {
		return err
	}

	api, err := startComponent(ctx, "kube-apiserver", c.apiServerArgs(), c.kubeAPIServer())
	if err != nil {
		return err
	}
	// The bootstrap RBAC policy and system PriorityClasses, which two
	// disabled upstream hooks would write (rbacseed.go).
	seedCtx, stopSeeding := context.WithTimeout(klog.NewContext(context.WithoutCancel(ctx), logger), readyTimeout)
	defer stopSeeding()
	seeded := make(chan error, 1)
	go func() { seeded <- c.seedBootstrapPolicy(seedCtx) }()
	// Start-up is not interruptible: kube-apiserver's post-start hooks
	// treat a cancelled context as fatal and exit the whole process
	// (klog.Fatalf). Once /readyz is 200 every hook has returned and a stop
	// is clean, so a stop requested earlier waits for that.
	if err := c.waitReady(api); err != nil {
		stopSeeding()
		return api.stop(err)
	}
	if err := <-seeded; err != nil {
		return api.stop(err)
	}
	if ctx.Err() != nil {
		logger.Info("Stopping tenant control plane that was stopped while starting")
		return api.stop(nil)
	}
	logger.Info("Tenant apiserver is ready", "after", time.Since(start).Round(time.Millisecond), "server", c.loopbackServer())

	kcm, err := startComponent(ctx, "kube-controller-manager", c.controllerManagerArgs(), prepareControllerManager)
	if err != nil {
		return api.stop(err)
	}
	var own *component // the controllers vnest runs itself (args.go: ownControllers), or none
	if c.runsOwnControllers() {
		if own, err = startComponent(ctx, vapstatus.Name, nil, c.prepareOwnControllers); err != nil {
			return api.stop(kcm.stop(err))
		}
	}
	// Controllers stop before the apiserver so that they do not spend their
	// last seconds on connection errors.
	stopAll := func(cause error) error { return api.stop(kcm.stop(own.stop(cause))) }
	// Ready means usable: pods are only admitted once their namespace's default service
	// account exists, which the serviceaccount controller creates just after it starts.
	if err := c.waitDefaultServiceAccount(kcm); err != nil {
		return stopAll(err)
	}
	// Before admin.kubeconfig, which tells the world (and tests) that start-up is over.
	memoryReady()
	if err := c.writeKubeconfig(layout.AdminKubeconfigFile, c.kubeconfigServer, c.pki.Admin, false); err != nil {
		return stopAll(err)
	}
	if c.ownsPKI() {
		// Stopped before admin.kubeconfig is removed, which it may write.
		defer c.startRenewingPKI(ctx)()
	}
	defer c.tightenGC(logger)()
	c.limitProcs(logger)
	logger.Info("Tenant control plane is ready", "after", time.Since(start).Round(time.Millisecond), "kubeconfig", admin)

	select {
	case <-ctx.Done():
		logger.Info("Stopping tenant control plane")
		return stopAll(nil)
	case <-kcm.done:
		return stopAll(kcm.unexpectedStop())
	case <-api.done:
		return stopAll(api.unexpectedStop())
	case <-own.finished():
		return stopAll(own.unexpectedStop())
	}
}

// prepareOwnControllers prepares the controllers vnest runs in place of kube-controller-manager's
// (args.go: ownControllers), with kube-controller-manager's credentials.
func (c CompletedConfig) prepareOwnControllers(context.Context, []string) (func(context.Context) error, error) {
	config, err := clientcmd.BuildConfigFromFlags("", filepath.Join(c.stateDir, layout.ControllerManagerKubeconfigFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", vapstatus.Name, err)
	}
	return func(ctx context.Context) error { return vapstatus.Run(ctx, config, vapstatus.Workers) }, nil
}

// component is an upstream server running in a goroutine of this process.
type component struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned; err is set then
	err    error
}

// startComponent prepares name from args and runs it in the background. Its
// context does not inherit ctx's cancellation: Run decides when and in
// which order components stop.
func startComponent(ctx context.Context, name string, args []string,
	prepare func(context.Context, []string) (func(context.Context) error, error)) (*component, error) {
	logger := klog.FromContext(ctx).WithName(name)
	cctx, cancel := context.WithCancel(klog.NewContext(context.WithoutCancel(ctx), logger))
	run, err := prepare(cctx, args)
	if err != nil {
		cancel()
		return nil, err
	}
	c := &component{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = run(cctx)
	}()
	return c, nil
}

// stop cancels the component, waits for it and returns cause, or the
// component's own error when there is no cause. A nil component has nothing to stop.
func (c *component) stop(cause error) error {
	if c == nil {
		return cause
	}
	c.cancel()
	<-c.done
	if cause == nil && c.err != nil && !errors.Is(c.err, context.Canceled) {
		cause = fmt.Errorf("%s: %w", c.name, c.err)
	}
	return cause
}

// finished is closed when the component returned; never for a nil component.
func (c *component) finished() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.done
}

// unexpectedStop is the error for a component that returned on its own.
func (c *component) unexpectedStop() error {
	if c.err == nil {
		return fmt.Errorf("%s stopped unexpectedly", c.name)
	}
	return fmt.Errorf("%s: %w", c.name, c.err)
}

// waitReady polls /readyz with the admin certificate until it answers 200,
// the apiserver stops or readyTimeout passes.
func (c CompletedConfig) waitReady(api *component) error {
	client, err := c.adminClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var last string
	for {
		var code int
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code).Raw()
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("HTTP %d: %v %s", code, err, body)
		select {
		case <-api.done:
			return api.unexpectedStop()
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %s (etcd %v reachable?); last /readyz: %s", readyTimeout, c.opts.EtcdServers, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitDefaultServiceAccount polls for the service account default/default until it exists,
// the controllers stop or readyTimeout passes.
func (c CompletedConfig) waitDefaultServiceAccount(kcm *component) error {
	client, err := c.adminClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-kcm.done:
			return kcm.unexpectedStop()
		case <-ctx.Done():
			return fmt.Errorf("the service account default/default did not appear within %s: %v", readyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c CompletedConfig) adminClient() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(c.adminConfig())
}

// adminConfig is a loopback client configuration with the admin identity.
func (c CompletedConfig) adminConfig() *rest.Config {
	return &rest.Config{
		Host: c.loopbackServer(),
		TLSClientConfig: rest.TLSClientConfig{
			CAFile: c.pki.CA.CertFile, CertFile: c.pki.Admin.CertFile, KeyFile: c.pki.Admin.KeyFile,
		},
		Timeout: 5 * time.Second,
	}
}

func (c *completedConfig) loopbackServer() string {
	return "https://" + net.JoinHostPort(c.loopbackHost, strconv.Itoa(c.opts.SecurePort))
}

// writeKubeconfig writes the kubeconfig name into the state directory, with client's
// certificate embedded or, byPath, named.
func (c *completedConfig) writeKubeconfig(name, server string, client pki.Pair, byPath bool) error {
	ca, err := os.ReadFile(c.pki.CA.CertFile)
	if err != nil {
		return err
	}
	return pki.WriteKubeconfig(filepath.Join(c.stateDir, name), pki.Kubeconfig{
		Name: "vnest-tenant", Server: server, CA: ca, Client: client, ClientByPath: byPath,
	})
}
