package syncer

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
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
		Handlers:             map[string]kubeletproxy.TenantHandler{serviceip.Path: s.serveServiceIP},
		PinMismatch:          s.recheckKubeletClientPin,
		MaxRequestsPerTenant: s.opts.KubeletProxyMaxRequestsPerTenant,
		MaxRequests:          s.opts.KubeletProxyMaxRequests,
		Registerer:           ctrlmetrics.Registry,
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
			out = append(out, kubeletproxy.Tenant{ClusterKey: t.key, CA: t.ca, KubeletClient: t.kubeletClient, Pods: t.pods})
		}
	}
	return out
}

// tenantCA is the CA a tenant kubeconfig trusts: the tenant CA, which also signs the tenant
// apiserver's kubelet client certificate. Nil when the kubeconfig has none.
func tenantCA(cfg *rest.Config) *kubeletproxy.CA {
	data := cfg.TLSClientConfig.CAData
	if len(data) == 0 && cfg.TLSClientConfig.CAFile != "" {
		data, _ = os.ReadFile(cfg.TLSClientConfig.CAFile)
	}
	return kubeletproxy.CAFromPEM(data)
}

// pinRecheckInterval is how often at most a refused certificate makes the syncer re-read a
// tenant's PKI Secret: a tenant user who holds an old certificate of the kubelet client's name
// must not make it read the Secret at every request.
const pinRecheckInterval = 10 * time.Second

// kubeletClientPin is the DER of the kubelet client certificate (PEM) the syncer read from the
// tenant's PKI Secret, which the kubelet proxy pins. Without one (none there, not readable, or
// not a certificate) the proxy takes any certificate of the tenant CA with the kubelet client's
// name, as before the pin, and the syncer says so once per start of the tenant.
func (s *Syncer) kubeletClientPin(ctx context.Context, vc *v1alpha1.VirtualCluster, pemData []byte) []byte {
	if s.kubeletEndpoint().IP == "" {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("tenant", vc.Status.ClusterKey, "virtualCluster", klog.KObj(vc), "secret", vc.PKISecretName())
	if len(pemData) == 0 {
		logger.Info("No kubelet client certificate of the tenant in its PKI Secret (none, or not readable); the kubelet proxy takes any certificate of the tenant CA for " + layout.KubeletClientUser)
		return nil
	}
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		logger.Error(errors.New("no PEM certificate"), "The kubelet proxy takes any certificate of the tenant CA for "+layout.KubeletClientUser, "key", layout.KubeletClientCertName+".crt")
		return nil
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		logger.Error(err, "The kubelet proxy takes any certificate of the tenant CA for "+layout.KubeletClientUser, "key", layout.KubeletClientCertName+".crt")
		return nil
	}
	return block.Bytes
}

// recheckKubeletClientPin re-reads the PKI Secret of a tenant whose CA signed a kubelet client
// certificate the proxy refused for not being the pinned one: the manager renews the
// certificate 30 days before it expires and restarts the control plane with it, and nothing
// tells the syncer, whose VirtualCluster may not change. A new certificate in the Secret
// changes the tenant's fingerprint, and the tenant is served again, with the new pin.
func (s *Syncer) recheckKubeletClientPin(ctx context.Context, pt kubeletproxy.Tenant) {
	t := s.tenant(pt.ClusterKey)
	if t == nil {
		return
	}
	now := time.Now().UnixNano()
	last := t.pinRechecked.Load()
	if now-last < int64(pinRecheckInterval) || !t.pinRechecked.CompareAndSwap(last, now) {
		return
	}
	klog.FromContext(ctx).Info("Kubelet proxy refused a kubelet client certificate of the tenant CA that is not the pinned one; re-reading the tenant's PKI Secret in case it was renewed",
		"tenant", t.key, "virtualCluster", t.vc)
	s.vcQueue.Add(t.vc.String())
}
