package syncer

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/vnest-dev/vnest/internal/serviceip"
	"github.com/vnest-dev/vnest/syncer/kubeletproxy"
)

// The kubelet proxy (package kubeletproxy) serves the kubelet API of virtual nodes, so that
// `kubectl logs/exec/attach/port-forward` on tenant pods work. This file wires it to the
// syncer: the tenants it serves, the super pods, and the address virtual nodes advertise.

// kubeletEndpoint is where tenant apiservers reach the kubelet proxy; zero when it is off.
type kubeletEndpoint struct {
	IP   string
	Port int32
}

// kubeletProxyEndpoint checks the kubelet proxy flags and returns the advertised endpoint:
// --kubelet-proxy-advertise-address is an IP, or IP:port when the port tenant apiservers
// reach differs from the bound one (a Service or NAT in between).
func kubeletProxyEndpoint(bind, advertise string) (kubeletEndpoint, error) {
	if bind == "" {
		if advertise != "" {
			return kubeletEndpoint{}, fmt.Errorf("--kubelet-proxy-advertise-address needs --kubelet-proxy-bind-address")
		}
		return kubeletEndpoint{}, nil
	}
	_, bindPort, err := net.SplitHostPort(bind)
	if err != nil {
		return kubeletEndpoint{}, fmt.Errorf("--kubelet-proxy-bind-address %q: want host:port: %w", bind, err)
	}
	ip, port := advertise, bindPort
	if h, p, err := net.SplitHostPort(advertise); err == nil {
		ip, port = h, p
	}
	if net.ParseIP(ip) == nil {
		return kubeletEndpoint{}, fmt.Errorf("--kubelet-proxy-advertise-address %q: want the IP (or IP:port) tenant apiservers reach the proxy on; it becomes the InternalIP of virtual nodes", advertise)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return kubeletEndpoint{}, fmt.Errorf("--kubelet-proxy-bind-address %q / --kubelet-proxy-advertise-address %q: need a port between 1 and 65535", bind, advertise)
	}
	return kubeletEndpoint{IP: ip, Port: int32(n)}, nil
}

// apply points the virtual node n at the kubelet proxy: the proxy's IP is the node's only
// InternalIP and its port the node's kubelet port, so that a tenant apiserver (which prefers
// InternalIP, see apiserver/args.go) sends pods/log, exec, attach and port-forward there. The
// super node's own InternalIPs go, so that no tenant takes one for the address of the node's
// kubelet; its Hostname, ExternalIPs and DNS names stay. Pods' status.hostIP keeps the super
// node's address. With the proxy off, n keeps the super node's addresses.
func (e kubeletEndpoint) apply(n *corev1.Node) {
	if e.IP == "" {
		return
	}
	addrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: e.IP}}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			addrs = append(addrs, a)
		}
	}
	n.Status.Addresses = addrs
	n.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: e.Port}}
}

func (s *Syncer) kubeletEndpoint() kubeletEndpoint {
	if s.opts == nil {
		return kubeletEndpoint{}
	}
	return s.opts.kubelet
}

// serveKubeletProxy starts the kubelet proxy when it is on.
func (s *Syncer) serveKubeletProxy(ctx context.Context) error {
	ep := s.kubeletEndpoint()
	if ep.IP == "" {
		return nil
	}
	p, err := kubeletproxy.New(kubeletproxy.Config{
		Tenants: s.proxyTenants, SuperPods: s.superPods, Super: s.opts.super, ServingHosts: []string{ep.IP},
		Handlers: map[string]kubeletproxy.TenantHandler{serviceip.Path: s.serveServiceIP},
	})
	if err != nil {
		return err
	}
	_, err = p.Start(ctx, s.opts.KubeletProxyBindAddress)
	return err
}

// proxyTenants are the tenants the kubelet proxy may serve: those served, with a CA.
func (s *Syncer) proxyTenants() []kubeletproxy.Tenant {
	var out []kubeletproxy.Tenant
	for _, t := range s.servingTenants() {
		if t.ca != nil {
			out = append(out, kubeletproxy.Tenant{ClusterKey: t.key, CA: t.ca, Pods: t.pods})
		}
	}
	return out
}

// tenantCA is the CA a tenant kubeconfig trusts: the tenant CA, which also signs the tenant
// apiserver's kubelet client certificate. Nil when the kubeconfig has none.
func tenantCA(cfg *rest.Config) *x509.CertPool {
	data := cfg.TLSClientConfig.CAData
	if len(data) == 0 && cfg.TLSClientConfig.CAFile != "" {
		data, _ = os.ReadFile(cfg.TLSClientConfig.CAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil
	}
	return pool
}
