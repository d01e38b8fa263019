package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/cgroup"
	"github.com/vnest-dev/vnest/internal/child"
)

// Restart backoff of a crashing local control plane.
const (
	restartBackoffMax = time.Minute
	// stableRun is how long a control plane must have run for its next
	// exit to count as the first again.
	stableRun = 5 * time.Minute
	// startupWindow is how long a freshly started control plane may take
	// to answer /readyz before that counts as unhealthy.
	startupWindow = 2 * time.Minute
	// readyPoll is how often a starting control plane's ready file is looked for.
	readyPoll = 50 * time.Millisecond
)

// localProvisioner runs each tenant control plane as a `vnest apiserver`
// child process of the manager, on a port of the manager's host. The port
// is kept in status.endpoint, so a restarted manager starts the tenant on
// the same port again (with the same PKI, from the Secret, and the same
// data, in etcd): clients keep working.
type localProvisioner struct {
	stateDir string // per tenant: stateDir/<namespace>/<name>
	binary   string
	hostIP   net.IP
	portMin  int
	portMax  int
	// reader lists VirtualClusters to see which ports they hold.
	reader client.Reader
	// wakeups receives a VirtualCluster whose child stopped by itself or
	// just became ready: the controller should look at it now.
	wakeups chan event.GenericEvent
	// cgroups is where children get their resource limits; cgroupsErr says
	// why there is none (only an error for a tenant that has limits).
	cgroups    cgroup.Hierarchy
	cgroupsErr error

	mu      sync.Mutex
	tenants map[types.NamespacedName]*localTenant
	closed  bool
}

// localTenant is the provisioner's memory of one VirtualCluster.
type localTenant struct {
	port     int
	proc     *child.Process
	restarts int // exits in a row without a stable run
	lastExit time.Time
	lastErr  error
	group    string // the cgroup a process of this tenant was placed in, if any (local_limits.go)
	oomKills int64  // the group's OOM kills seen so far
	pki      string // pkiHash of the PKI the running process started with
}

func newLocalProvisioner(stateDir, binary string, hostIP net.IP, portMin, portMax int, reader client.Reader) *localProvisioner {
	cgroups, cgroupsErr := cgroup.Host()
	return &localProvisioner{
		stateDir: stateDir, binary: binary, hostIP: hostIP, portMin: portMin, portMax: portMax, reader: reader,
		wakeups: make(chan event.GenericEvent, 64),
		cgroups: cgroups, cgroupsErr: cgroupsErr,
		tenants: map[types.NamespacedName]*localTenant{},
	}
}

func (p *localProvisioner) dir(vc *v1alpha1.VirtualCluster) string {
	return filepath.Join(p.stateDir, vc.Namespace, vc.Name)
}

func (p *localProvisioner) url(port int) string {
	return "https://" + net.JoinHostPort(p.hostIP.String(), strconv.Itoa(port))
}

// Endpoint implements provisioner.
func (p *localProvisioner) Endpoint(ctx context.Context, vc *v1alpha1.VirtualCluster) (endpoint, error) {
	port, err := p.reservePort(ctx, vc)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{URL: p.url(port), Names: layout.ServingNames{IPs: []net.IP{p.hostIP}}}, nil
}

// reservePort returns vc's port: the one it has, the one its status
// remembers (after a manager restart), or a free one of the range.
func (p *localProvisioner) reservePort(ctx context.Context, vc *v1alpha1.VirtualCluster) (int, error) {
	key := client.ObjectKeyFromObject(vc)
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.tenants[key]; t != nil && t.port != 0 {
		return t.port, nil
	}
	var list v1alpha1.VirtualClusterList
	if err := p.reader.List(ctx, &list); err != nil {
		return 0, transient(fmt.Errorf("listing VirtualClusters for the ports in use: %w", err))
	}
	used := map[int]bool{}
	for i := range list.Items {
		other := &list.Items[i]
		if client.ObjectKeyFromObject(other) != key {
			used[endpointPort(other.Status.Endpoint)] = true
		}
	}
	for k, t := range p.tenants {
		if k != key {
			used[t.port] = true
		}
	}
	port := pickPort(endpointPort(vc.Status.Endpoint), p.portMin, p.portMax, used, portFree)
	if port == 0 {
		return 0, failure(v1alpha1.ReasonProvisionFailed,
			"no free port left in the manager's --local-port-range %d-%d for the local control plane", p.portMin, p.portMax)
	}
	p.tenants[key] = &localTenant{port: port}
	return port, nil
}

// pickPort keeps remembered when it is in [lo, hi] and not used by another
// tenant (it may be busy: that is our own control plane still running, or
// a port we must get back), else returns the first port of the range that
// is neither used nor busy; 0 when there is none.
func pickPort(remembered, lo, hi int, used map[int]bool, free func(int) bool) int {
	if remembered >= lo && remembered <= hi && !used[remembered] {
		return remembered
	}
	for port := lo; port <= hi; port++ {
		if !used[port] && free(port) {
			return port
		}
	}
	return 0
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Ensure implements provisioner.
func (p *localProvisioner) Ensure(ctx context.Context, t tenant) (bool, error) {
	logger := klog.FromContext(ctx)
	vc := t.VC
	key := client.ObjectKeyFromObject(vc)
	dir := p.dir(vc)
	pkiDir := filepath.Join(dir, "pki")
	if err := writePKIDir(pkiDir, t.PKI); err != nil {
		return false, failure(v1alpha1.ReasonProvisionFailed, "writing the PKI files into %s: %v", pkiDir, err)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, waitingFor(retryFailure, "the manager is shutting down")
	}
	lt := p.tenants[key]
	if lt == nil || lt.port == 0 {
		return false, fmt.Errorf("no port reserved for %s", key) // Endpoint comes first
	}
	args := apiserverArgs(t, t.EtcdServers, dir, pkiDir, "0.0.0.0", lt.port, t.Endpoint.URL)
	args = append(args, "--advertise-address="+p.hostIP.String())
	args = append(args, limitArgs(controlPlaneResources(vc, corev1.ResourceRequirements{}))...)
	pki := pkiHash(t.PKI)
	if lt.proc != nil && lt.proc.Running() {
		if slices.Equal(lt.proc.Args, args) && lt.pki == pki {
			// Limits other than memory's change in place.
			return time.Since(lt.proc.Started) < startupWindow, p.applyLimits(vc, lt)
		}
		logger.Info("Restarting local control plane with new arguments or PKI", "virtualCluster", klog.KObj(vc), "pkiChanged", lt.pki != pki)
		if err := stopProcess(lt.proc); err != nil {
			return false, err
		}
	}
	if lt.proc != nil && lt.proc.ExitedOnItsOwn() {
		if wait := time.Until(lt.lastExit.Add(restartDelay(lt.restarts))); wait > 0 {
			return false, &phaseError{
				reason: v1alpha1.ReasonControlPlaneUnhealthy,
				message: fmt.Sprintf("the control plane process exited (%v) %d time(s) in a row; restarting in %s; log %s: %s",
					lt.lastErr, lt.restarts, wait.Round(time.Second), lt.proc.LogFile, lastLogLine(lt.proc.LogFile)),
				retryAfter: wait,
			}
		}
	}
	// admin.kubeconfig appears once the control plane is ready; a stale one
	// would wake the controller too early.
	readyFile := filepath.Join(dir, layout.AdminKubeconfigFile)
	if err := os.Remove(readyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, failure(v1alpha1.ReasonProvisionFailed, "removing the stale %s: %v", readyFile, err)
	}
	proc, err := child.Start(dir, "apiserver", p.binary, args, func(proc *child.Process, err error) { p.onExit(key, proc, err) })
	if err != nil {
		return false, failure(v1alpha1.ReasonProvisionFailed, "starting %s: %v", p.binary, err)
	}
	lt.proc, lt.pki = proc, pki
	if err := p.applyLimits(vc, lt); err != nil {
		// Not a control plane without the limits it was given.
		return false, errors.Join(err, stopProcess(proc))
	}
	go p.wakeWhenReady(key, proc, readyFile)
	logger.Info("Started local control plane", "virtualCluster", klog.KObj(vc), "pid", proc.Pid(), "binary", p.binary, "endpoint", t.Endpoint.URL, "log", proc.LogFile)
	return true, nil
}

// onExit records a child that stopped by itself and wakes the controller.
func (p *localProvisioner) onExit(key types.NamespacedName, proc *child.Process, err error) {
	p.mu.Lock()
	lt := p.tenants[key]
	if lt == nil || lt.proc != proc {
		p.mu.Unlock()
		return
	}
	if time.Since(proc.Started) > stableRun {
		lt.restarts = 0
	}
	lt.restarts++
	lt.lastExit, lt.lastErr = time.Now(), p.explainExit(lt, err)
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		p.wake(key)
	}
}

// wakeWhenReady wakes the controller as soon as proc wrote readyFile, so a
// new tenant turns Running without waiting for the next poll. A stat every
// readyPoll costs next to nothing; it stops when the process does.
func (p *localProvisioner) wakeWhenReady(key types.NamespacedName, proc *child.Process, readyFile string) {
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		select {
		case <-proc.Done():
			return
		case <-tick.C:
		}
		if _, err := os.Stat(readyFile); err == nil {
			p.wake(key)
			return
		}
	}
}

// wake enqueues a reconcile of key.
func (p *localProvisioner) wake(key types.NamespacedName) {
	vc := &v1alpha1.VirtualCluster{}
	vc.Namespace, vc.Name = key.Namespace, key.Name
	select {
	case p.wakeups <- event.GenericEvent{Object: vc}:
	default: // the queue is full of wake-ups already; the periodic resync catches up
	}
}

func restartDelay(restarts int) time.Duration {
	if restarts <= 0 {
		return 0
	}
	d := time.Second << min(restarts-1, 6)
	return min(d, restartBackoffMax)
}

// Diagnose implements diagnoser.
func (p *localProvisioner) Diagnose(_ context.Context, vc *v1alpha1.VirtualCluster) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lt := p.tenants[client.ObjectKeyFromObject(vc)]
	switch {
	case lt == nil || lt.proc == nil:
		return "no control plane process"
	case lt.proc.Running():
		return fmt.Sprintf("process %d running for %s; log %s", lt.proc.Pid(), time.Since(lt.proc.Started).Round(time.Second), lt.proc.LogFile)
	}
	return fmt.Sprintf("process exited (%v); log %s: %s", lt.lastErr, lt.proc.LogFile, lastLogLine(lt.proc.LogFile))
}

// Teardown implements provisioner.
func (p *localProvisioner) Teardown(ctx context.Context, vc *v1alpha1.VirtualCluster) (bool, error) {
	key := client.ObjectKeyFromObject(vc)
	p.mu.Lock()
	lt := p.tenants[key]
	delete(p.tenants, key)
	p.mu.Unlock()
	if lt != nil && lt.proc != nil {
		if err := stopProcess(lt.proc); err != nil {
			return false, err
		}
		klog.FromContext(ctx).Info("Stopped local control plane", "virtualCluster", klog.KObj(vc))
	}
	// Also a group left behind by an earlier manager.
	if key := vc.Status.ClusterKey; key != "" && p.cgroupsErr == nil {
		if err := p.cgroups.Remove(key); err != nil {
			return false, err
		}
	}
	if err := os.RemoveAll(p.dir(vc)); err != nil {
		return false, fmt.Errorf("removing the tenant's state directory: %w", err)
	}
	// Remove the namespace directory too when this was its last tenant.
	_ = os.Remove(filepath.Dir(p.dir(vc)))
	return true, nil
}

// Start implements manager.Runnable: it only waits for the manager to stop,
// then stops every child, so no control plane outlives a clean shutdown
// (and Pdeathsig covers an unclean one).
func (p *localProvisioner) Start(ctx context.Context) error {
	<-ctx.Done()
	p.mu.Lock()
	p.closed = true
	var procs []*child.Process
	var groups []string
	for _, lt := range p.tenants {
		if lt.proc != nil {
			procs = append(procs, lt.proc)
		}
		if lt.group != "" {
			groups = append(groups, lt.group)
		}
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i, proc := range procs {
		wg.Go(func() { errs[i] = stopProcess(proc) })
	}
	wg.Wait()
	for _, g := range groups {
		errs = append(errs, p.cgroups.Remove(g))
	}
	return errors.Join(errs...)
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: children
// must be stopped whether or not this manager leads.
func (p *localProvisioner) NeedLeaderElection() bool { return false }

// writePKIDir makes dir hold exactly the files of data (mode 0600); files
// are rewritten only when they changed, so the apiserver's certificate
// reloaders see a change only when there is one.
func writePKIDir(dir string, data map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, content := range data {
		file := filepath.Join(dir, name)
		if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, content) {
			continue
		}
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, content, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, file); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := data[e.Name()]; !ok {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
