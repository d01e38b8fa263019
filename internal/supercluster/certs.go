package supercluster

import (
	"fmt"
	"net"
	"path/filepath"

	"github.com/vnest-dev/vnest/internal/pki"
)

// serviceCIDR, podCIDR and the first service IP are fixed for the local
// super cluster; tenants get their own service IPs from the super side later.
const (
	serviceCIDR   = "10.96.0.0/16"
	kubernetesSvc = "10.96.0.1"
	podCIDR       = "10.244.0.0/16"
	nodePodCIDR   = "10.244.0.0/24" // the single real node's pod range
	clusterDomain = "cluster.local"
)

// certs are the super cluster's PKI files.
type certs struct {
	ca, frontProxyCA, etcdCA   *pki.Authority
	apiserver, kubeletClient   pki.Pair
	etcdServer, etcdClient     pki.Pair
	frontProxyClient           pki.Pair
	admin, controllerManager   pki.Pair
	scheduler, kubelet, proxy  pki.Pair
	kubeletServing, kwokClient pki.Pair
	saKey, saPub               string
}

func (c *config) pkiDir() string { return filepath.Join(c.dataDir, "pki") }

// ensureCerts loads or creates every certificate. Reissues happen only when
// something they certify changed (say, the host IP), so clients keep working.
func (c *config) ensureCerts() (*certs, error) {
	dir := c.pkiDir()
	var out certs
	var err error
	if out.ca, err = pki.LoadOrCreateCA(dir, "ca", "vnest-super-ca"); err != nil {
		return nil, err
	}
	if out.frontProxyCA, err = pki.LoadOrCreateCA(dir, "front-proxy-ca", "vnest-front-proxy-ca"); err != nil {
		return nil, err
	}
	// etcd has its own CA: the manager issues tenant etcd client certificates
	// with it, and those must never be valid for the super apiserver.
	if out.etcdCA, err = pki.LoadOrCreateCA(dir, "etcd-ca", "vnest-etcd-ca"); err != nil {
		return nil, err
	}
	loopback := net.ParseIP("127.0.0.1")
	issue := []struct {
		into *pki.Pair
		ca   *pki.Authority
		name string
		spec pki.Spec
	}{
		{&out.apiserver, out.ca, "apiserver", pki.Spec{
			CommonName: "kube-apiserver", Server: true,
			DNSNames: []string{"localhost", c.nodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + clusterDomain},
			IPs:      []net.IP{loopback, c.hostIP, net.ParseIP(kubernetesSvc)},
		}},
		{&out.kubeletClient, out.ca, "apiserver-kubelet-client", pki.Spec{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true}},
		{&out.etcdServer, out.etcdCA, "etcd-server", pki.Spec{CommonName: "etcd", DNSNames: []string{"localhost"}, IPs: []net.IP{loopback, c.hostIP}, Server: true, Client: true}},
		{&out.etcdClient, out.etcdCA, "etcd-client", pki.Spec{CommonName: "kube-apiserver-etcd-client", Client: true}},
		{&out.frontProxyClient, out.frontProxyCA, "front-proxy-client", pki.Spec{CommonName: "front-proxy-client", Client: true}},
		{&out.admin, out.ca, "admin", pki.Spec{CommonName: "vnest-admin", Organization: []string{"system:masters"}, Client: true}},
		{&out.controllerManager, out.ca, "controller-manager", pki.Spec{CommonName: "system:kube-controller-manager", Client: true}},
		{&out.scheduler, out.ca, "scheduler", pki.Spec{CommonName: "system:kube-scheduler", Client: true}},
		{&out.kubelet, out.ca, "kubelet", pki.Spec{CommonName: "system:node:" + c.nodeName, Organization: []string{"system:nodes"}, Client: true}},
		{&out.kubeletServing, out.ca, "kubelet-serving", pki.Spec{CommonName: c.nodeName, DNSNames: []string{c.nodeName, "localhost"}, IPs: []net.IP{c.hostIP, loopback}, Server: true}},
		{&out.proxy, out.ca, "kube-proxy", pki.Spec{CommonName: "system:kube-proxy", Client: true}},
		// kwok simulates many kubelets; it needs to write any node and pod status.
		{&out.kwokClient, out.ca, "kwok", pki.Spec{CommonName: "vnest-kwok", Organization: []string{"system:masters"}, Client: true}},
	}
	for _, i := range issue {
		if *i.into, err = i.ca.Ensure(dir, i.name, i.spec); err != nil {
			return nil, fmt.Errorf("PKI: %w", err)
		}
	}
	if out.saKey, out.saPub, err = pki.EnsureKey(dir, "sa"); err != nil {
		return nil, fmt.Errorf("PKI: %w", err)
	}
	return &out, nil
}

// writeKubeconfigs writes one kubeconfig per client identity into
// DIR/kubeconfigs; the user-facing super.kubeconfig is written only once the
// cluster is ready.
func (c *config) writeKubeconfigs(cs *certs) error {
	for name, pair := range map[string]pki.Pair{
		"admin": cs.admin, "controller-manager": cs.controllerManager, "scheduler": cs.scheduler,
		"kubelet": cs.kubelet, "kube-proxy": cs.proxy, "kwok": cs.kwokClient,
	} {
		if err := pki.WriteKubeconfig(c.kubeconfigPath(name), pki.Kubeconfig{
			Name: "vnest-super", Server: c.localServer(), CA: cs.ca.CertPEM(), Client: pair,
		}); err != nil {
			return err
		}
	}
	return nil
}

func (c *config) kubeconfigPath(name string) string {
	return filepath.Join(c.dataDir, "kubeconfigs", name+".kubeconfig")
}

func (c *config) localServer() string {
	return fmt.Sprintf("https://127.0.0.1:%d", c.ports.APIServer)
}
