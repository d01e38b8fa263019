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
	Client Pair   // client certificate; embedded into the file unless ClientByPath
	// ClientByPath names Client's files in the kubeconfig instead of
	// embedding them: client-go then reads them again while it runs (every
	// 5 minutes), so a renewed certificate is taken up without a restart.
	// Such a file is only good where those paths are.
	ClientByPath bool
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

// KubeconfigBytes renders k with the client certificate and key embedded,
// or named with ClientByPath.
func KubeconfigBytes(k Kubeconfig) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[k.Name] = &clientcmdapi.Cluster{Server: k.Server, CertificateAuthorityData: k.CA}
	cfg.Contexts[k.Name] = &clientcmdapi.Context{Cluster: k.Name, AuthInfo: k.Name}
	cfg.CurrentContext = k.Name
	if k.ClientByPath {
		cfg.AuthInfos[k.Name] = &clientcmdapi.AuthInfo{ClientCertificate: k.Client.CertFile, ClientKey: k.Client.KeyFile}
		return clientcmd.Write(*cfg)
	}
	cert, err := os.ReadFile(k.Client.CertFile)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", k.Name, err)
	}
	key, err := os.ReadFile(k.Client.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", k.Name, err)
	}
	cfg.AuthInfos[k.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	return clientcmd.Write(*cfg)
}
