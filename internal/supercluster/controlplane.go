package supercluster

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// apiserverArgs are the flags of the super cluster's kube-apiserver: TLS
// everywhere, client certificates + service-account tokens, Node+RBAC.
func (c *config) apiserverArgs(cs *certs) []string {
	return []string{
		"kube-apiserver",
		"--bind-address=0.0.0.0", // pods reach it on the host IP through the `kubernetes` Service
		"--secure-port=" + strconv.Itoa(c.ports.APIServer),
		"--advertise-address=" + c.hostIP.String(),
		"--etcd-servers=" + c.etcdURL(),
		"--etcd-cafile=" + cs.etcdCA.CertFile,
		"--etcd-certfile=" + cs.etcdClient.CertFile,
		"--etcd-keyfile=" + cs.etcdClient.KeyFile,
		"--tls-cert-file=" + cs.apiserver.CertFile,
		"--tls-private-key-file=" + cs.apiserver.KeyFile,
		"--client-ca-file=" + cs.ca.CertFile,
		"--kubelet-client-certificate=" + cs.kubeletClient.CertFile,
		"--kubelet-client-key=" + cs.kubeletClient.KeyFile,
		"--kubelet-certificate-authority=" + cs.ca.CertFile,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-issuer=https://kubernetes.default.svc." + clusterDomain,
		"--service-account-key-file=" + cs.saPub,
		"--service-account-signing-key-file=" + cs.saKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--requestheader-client-ca-file=" + cs.frontProxyCA.CertFile,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + cs.frontProxyClient.CertFile,
		"--proxy-client-key-file=" + cs.frontProxyClient.KeyFile,
		"--cert-dir=" + filepath.Join(c.dataDir, "apiserver"),
		"--profiling=false",
		"--v=1",
	}
}

func (c *config) controllerManagerArgs(cs *certs) []string {
	kc := c.kubeconfigPath("controller-manager")
	return []string{
		"kube-controller-manager",
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.ports.ControllerManager),
		"--cert-dir=" + filepath.Join(c.dataDir, "controller-manager"),
		"--client-ca-file=" + cs.ca.CertFile,
		"--requestheader-client-ca-file=" + cs.frontProxyCA.CertFile,
		"--cluster-signing-cert-file=" + cs.ca.CertFile,
		"--cluster-signing-key-file=" + cs.ca.KeyFile,
		"--root-ca-file=" + cs.ca.CertFile,
		"--service-account-private-key-file=" + cs.saKey,
		"--use-service-account-credentials=true",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--cluster-cidr=" + podCIDR,
		"--allocate-node-cidrs=false",
		// No cloud: the node lifecycle, not routes or cloud LBs.
		"--controllers=*,-route,-service,-cloud-node-lifecycle",
		"--leader-elect=false",
		"--profiling=false",
		"--v=1",
	}
}

func (c *config) schedulerArgs() []string {
	kc := c.kubeconfigPath("scheduler")
	return []string{
		"kube-scheduler",
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.ports.Scheduler),
		"--leader-elect=false",
		"--profiling=false",
		"--v=1",
	}
}

func (c *config) logDir() string { return filepath.Join(c.dataDir, "logs") }

func portString(p int) string { return fmt.Sprint(p) }
