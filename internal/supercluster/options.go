package supercluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Node modes accepted by --nodes.
const (
	NodesAuto      = "auto"
	NodesReal      = "real"
	NodesSimulated = "simulated"
)

// Options are the user-facing settings of `vnest up`.
type Options struct {
	DataDir       string
	Nodes         string
	NodeCount     int
	APIServerPort int
	// NoTenant skips the manager's demo tenant.
	NoTenant bool
	// NoManager runs the bare super cluster: CRDs are installed, but no
	// manager (and so no demo tenant) runs; tests bring their own.
	NoManager bool
	// NoSyncer runs no syncer; tests that kill and restart it run their own.
	NoSyncer bool
	// Binary is the vnest executable that children are started from;
	// empty means the running executable.
	Binary string
	// Out receives the few lines meant for the user (where the kubeconfig is).
	Out io.Writer
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{DataDir: ".vnest", Nodes: NodesAuto, NodeCount: 1, APIServerPort: 6443, Out: os.Stdout}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory for all state of the super cluster (etcd data, PKI, kubeconfigs, logs); reused when it exists.")
	fs.StringVar(&o.Nodes, "nodes", o.Nodes, "Node mode: real (kubelet+containerd, needs root and the Debian packages), simulated (kwok), or auto (real when possible).")
	fs.IntVar(&o.NodeCount, "node-count", o.NodeCount, "Number of nodes (simulated mode; real mode runs exactly one node).")
	fs.BoolVar(&o.NoManager, "no-manager", o.NoManager, "Do not run the vnest manager (implies --no-tenant); the VirtualCluster CRD is still installed.")
	fs.BoolVar(&o.NoSyncer, "no-syncer", o.NoSyncer, "Do not run the vnest syncer (tenant pods then stay Pending).")
	fs.BoolVar(&o.NoTenant, "no-tenant", o.NoTenant, "Do not create the demo VirtualCluster (the manager still runs).")
	fs.IntVar(&o.APIServerPort, "apiserver-port", o.APIServerPort, fmt.Sprintf("Port of kube-apiserver; the next %d ports are used by the other components.", portCount-1))
}

// config is the result of Complete: every derived value resolved.
type config struct {
	*Options
	dataDir  string // absolute
	binary   string
	mode     string // real or simulated
	modeWhy  string // why auto picked mode
	hostIP   net.IP
	nodeName string
	ports    ports
	runDir   string // short per-data-dir directory under /run for sockets
}

// Complete resolves defaults and derived values. It does not start anything.
func (o *Options) Complete() (*config, error) {
	if err := o.validateFlags(); err != nil {
		return nil, err
	}
	c := &config{Options: o, ports: newPorts(o.APIServerPort)}
	var err error
	if c.dataDir, err = usableDataDir(o.DataDir); err != nil {
		return nil, err
	}
	c.binary = o.Binary
	if c.binary == "" {
		if c.binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the vnest executable: %w", err)
		}
	}
	if c.hostIP, err = hostIP(); err != nil {
		return nil, err
	}
	c.nodeName = nodeName()
	c.runDir = runDirFor(c.dataDir)
	c.mode, c.modeWhy = pickMode(o.Nodes)
	if o.Nodes == NodesReal && c.mode != NodesReal {
		return nil, fmt.Errorf("--nodes real is not possible here: %s", c.modeWhy)
	}
	if c.mode == NodesReal && o.NodeCount != 1 {
		return nil, fmt.Errorf("invalid --node-count %d: real mode runs exactly one node (use --nodes simulated for more)", o.NodeCount)
	}
	// A second vnest up on this data dir is told that, rather than that the ports of the
	// first one are in use. run takes the lock for good.
	unlock, err := lockDataDir(c.dataDir)
	if err != nil {
		return nil, err
	}
	unlock()
	if err := c.ports.checkFree(c.mode); err != nil {
		return nil, err
	}
	return c, nil
}

func (o *Options) validateFlags() error {
	switch o.Nodes {
	case NodesAuto, NodesReal, NodesSimulated:
	default:
		return fmt.Errorf("invalid --nodes %q: must be one of auto, real, simulated", o.Nodes)
	}
	if o.NodeCount < 1 || o.NodeCount > 1000 {
		return fmt.Errorf("invalid --node-count %d: must be between 1 and 1000", o.NodeCount)
	}
	if o.APIServerPort < 1024 || o.APIServerPort+portCount > 65535 {
		return fmt.Errorf("invalid --apiserver-port %d: must be between 1024 and %d", o.APIServerPort, 65535-portCount)
	}
	if o.DataDir == "" {
		return errors.New("--data-dir must not be empty")
	}
	return nil
}

// usableDataDir creates dir if needed and proves it is writable.
func usableDataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--data-dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("--data-dir %s is not usable: %w", dir, err)
	}
	probe, err := os.CreateTemp(abs, ".probe-*")
	if err != nil {
		return "", fmt.Errorf("--data-dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return abs, nil
}

// realNodeTools are the host programs real mode needs (Debian packages
// containerd, runc, containernetworking-plugins, iptables, conntrack).
var realNodeTools = []string{"containerd", "ctr", "runc", "iptables", "conntrack", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/usr/lib/cni/portmap"}

// pickMode resolves auto: real when running as root with every tool present.
func pickMode(requested string) (mode, why string) {
	if requested == NodesSimulated {
		return NodesSimulated, "requested"
	}
	if os.Geteuid() != 0 {
		return NodesSimulated, "real nodes need root"
	}
	var missing []string
	for _, tool := range realNodeTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return NodesSimulated, fmt.Sprintf("missing %s (install with hack/install-deps.sh)", strings.Join(missing, ", "))
	}
	return NodesReal, "root and containerd/runc/CNI/iptables present"
}

// hostIP is the address pods and the apiserver use to reach this machine: the
// source address of the default route. Loopback does not work because the
// apiserver's endpoint in the `kubernetes` Service must be reachable from pods.
func hostIP() (net.IP, error) {
	conn, err := net.Dial("udp4", "192.0.2.255:9") // no packet is sent for UDP dial
	if err != nil {
		return nil, fmt.Errorf("finding the host IP (source address of the default route): %w", err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP, nil
}

func nodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "vnest-node"
	}
	return strings.ToLower(strings.Split(h, ".")[0])
}
