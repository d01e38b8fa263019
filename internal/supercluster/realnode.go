package supercluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// The settings below are the ones checked to work on a cgroup v1 microVM:
// kubelet failCgroupV1=false + cgroupfs driver, containerd's CRI with
// restrict_oom_score_adj, a locally built pause image, the CNI bridge from
// Debian's containernetworking-plugins and kube-proxy in iptables mode.

const (
	cniBridge  = "vnest0"
	cniBinDir  = "/usr/lib/cni"
	pauseImage = "vnest.local/pause:1"
)

// runDirFor is a short directory under /run for sockets and runtime state:
// unix socket paths are limited to 108 bytes, data dirs can be long.
func runDirFor(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return filepath.Join("/run/vnest", hex.EncodeToString(sum[:4]))
}

func (c *config) containerdSocket() string { return filepath.Join(c.runDir, "containerd.sock") }

func (c *config) kubeletDir() string { return filepath.Join(c.dataDir, "kubelet") }

var containerdTmpl = template.Must(template.New("containerd").Parse(`version = 2
root = "{{.Root}}"
state = "{{.State}}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{{.Socket}}"

[ttrpc]
  address = "{{.Socket}}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBin}}"
    conf_dir = "{{.CNIConf}}"
`))

var cniTmpl = template.Must(template.New("cni").Parse(`{
  "cniVersion": "1.0.0",
  "name": "vnest",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "{{.Bridge}}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "{{.IPAMDir}}",
        "ranges": [[{"subnet": "{{.Subnet}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`))

var kubeletTmpl = template.Must(template.New("kubelet").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{{.Socket}}
address: 0.0.0.0
port: {{.Port}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {{.HealthzPort}}
tlsCertFile: {{.ServingCert}}
tlsPrivateKeyFile: {{.ServingKey}}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {{.CA}}
authorization:
  mode: Webhook
clusterDomain: {{.Domain}}
resolvConf: /etc/resolv.conf
podLogsDir: {{.PodLogs}}
failSwapOn: false
rotateCertificates: false
serverTLSBootstrap: false
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
podCIDR: {{.PodCIDR}}
`))

var kubeProxyTmpl = template.Must(template.New("kube-proxy").Parse(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {{.Kubeconfig}}
hostnameOverride: {{.Node}}
clusterCIDR: {{.PodCIDR}}
metricsBindAddress: 127.0.0.1:{{.MetricsPort}}
healthzBindAddress: 127.0.0.1:{{.HealthzPort}}
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`))

// writeRealNodeConfig renders containerd, CNI, kubelet and kube-proxy
// configuration into the data dir (and the run dir for sockets).
func (c *config) writeRealNodeConfig(cs *certs) error {
	files := []struct {
		path string
		tmpl *template.Template
		data any
	}{
		{c.path("containerd", "config.toml"), containerdTmpl, map[string]string{
			"Root": c.path("containerd", "root"), "State": filepath.Join(c.runDir, "containerd"), "Socket": c.containerdSocket(),
			"Pause": pauseImage, "CNIBin": cniBinDir, "CNIConf": c.path("cni", "net.d"),
		}},
		{c.path("cni", "net.d", "10-vnest.conflist"), cniTmpl, map[string]string{
			"Bridge": cniBridge, "IPAMDir": c.path("cni", "ipam"), "Subnet": nodePodCIDR,
		}},
		{c.path("kubelet", "config.yaml"), kubeletTmpl, map[string]string{
			"Socket": c.containerdSocket(), "Port": strconv.Itoa(c.ports.Kubelet), "HealthzPort": strconv.Itoa(c.ports.KubeletHealthz),
			"ServingCert": cs.kubeletServing.CertFile, "ServingKey": cs.kubeletServing.KeyFile, "CA": cs.ca.CertFile,
			"Domain": clusterDomain, "PodLogs": c.path("pod-logs"), "PodCIDR": nodePodCIDR,
		}},
		{c.path("kube-proxy", "config.yaml"), kubeProxyTmpl, map[string]string{
			"Kubeconfig": c.kubeconfigPath("kube-proxy"), "Node": c.nodeName, "PodCIDR": podCIDR,
			"MetricsPort": strconv.Itoa(c.ports.ProxyMetrics), "HealthzPort": strconv.Itoa(c.ports.ProxyHealthz),
		}},
	}
	for _, f := range files {
		var b strings.Builder
		if err := f.tmpl.Execute(&b, f.data); err != nil {
			return fmt.Errorf("rendering %s: %w", f.path, err)
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	for _, d := range []string{c.path("pod-logs"), c.runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (c *config) path(elem ...string) string {
	return filepath.Join(append([]string{c.dataDir}, elem...)...)
}

func (c *config) containerdArgs() []string {
	return []string{"--config", c.path("containerd", "config.toml"), "--log-level", "warn"}
}

func (c *config) kubeletArgs() []string {
	return []string{
		"kubelet",
		"--config=" + c.path("kubelet", "config.yaml"),
		"--kubeconfig=" + c.kubeconfigPath("kubelet"),
		"--root-dir=" + c.kubeletDir(),
		"--cert-dir=" + c.path("kubelet", "pki"),
		"--hostname-override=" + c.nodeName,
		"--node-ip=" + c.hostIP.String(),
		"--v=1",
	}
}

func (c *config) kubeProxyArgs() []string {
	return []string{"kube-proxy", "--config=" + c.path("kube-proxy", "config.yaml"), "--v=1"}
}

// kubeProxyCleanupArgs removes every iptables chain kube-proxy created.
func (c *config) kubeProxyCleanupArgs() []string {
	return []string{"kube-proxy", "--cleanup", "--config=" + c.path("kube-proxy", "config.yaml")}
}
