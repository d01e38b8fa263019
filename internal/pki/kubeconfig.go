package pki

import (
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig describes a single-cluster, single-user kubeconfig.
type Kubeconfig struct {
	Name   string // used for the cluster, user and context names
	Server string
	CA     []byte // PEM
	Client Pair   // client certificate; embedded into the file
}

// WriteKubeconfig writes k to file atomically, with the client certificate and
// key embedded so the file can be copied elsewhere.
func WriteKubeconfig(file string, k Kubeconfig) error {
	data, err := KubeconfigBytes(k)
	if err != nil {
		return err
	}
	return writeFile(file, data, 0o600)
}

// KubeconfigBytes renders k with the client certificate and key embedded.
func KubeconfigBytes(k Kubeconfig) ([]byte, error) {
	cert, err := os.ReadFile(k.Client.CertFile)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", k.Name, err)
	}
	key, err := os.ReadFile(k.Client.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", k.Name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[k.Name] = &clientcmdapi.Cluster{Server: k.Server, CertificateAuthorityData: k.CA}
	cfg.AuthInfos[k.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[k.Name] = &clientcmdapi.Context{Cluster: k.Name, AuthInfo: k.Name}
	cfg.CurrentContext = k.Name
	return clientcmd.Write(*cfg)
}
