package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
)

// readyzTimeout bounds one readiness check.
const readyzTimeout = 3 * time.Second

// adminCredentials are the tenant CA and admin client pair from the PKI.
type adminCredentials struct {
	CA, Cert, Key []byte
}

func adminFrom(pkiData map[string][]byte) adminCredentials {
	return adminCredentials{
		CA:   pkiData[layout.CAName+".crt"],
		Cert: pkiData[layout.AdminCertName+".crt"],
		Key:  pkiData[layout.AdminCertName+".key"],
	}
}

// checkReadyz asks server's /readyz as the tenant admin, verifying the
// serving certificate against the tenant CA: success means the endpoint, the
// certificate's names and the admin identity all work, which is what a
// user of the kubeconfig needs. It then asks for the default/default
// ServiceAccount: /readyz answers a moment before the tenant's
// serviceaccount controller has created it, and until it exists every pod
// a user creates is refused ("serviceaccount default not found").
func checkReadyz(ctx context.Context, server string, admin adminCredentials) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(admin.CA) {
		return errors.New("the tenant CA certificate is not PEM")
	}
	pair, err := tls.X509KeyPair(admin.Cert, admin.Key)
	if err != nil {
		return fmt.Errorf("the admin key pair: %w", err)
	}
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, readyzTimeout)
	defer cancel()
	c := &http.Client{Transport: transport}
	server = strings.TrimSuffix(server, "/")
	code, body, err := get(ctx, c, server+"/readyz")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("/readyz answered HTTP %d: %s", code, lastLines(body, 3))
	}
	code, body, err = get(ctx, c, server+"/api/v1/namespaces/default/serviceaccounts/default")
	switch {
	case err != nil:
		return err
	case code == http.StatusNotFound:
		return errors.New("the default ServiceAccount does not exist yet (the tenant's serviceaccount controller creates it)")
	case code != http.StatusOK:
		return fmt.Errorf("reading the default ServiceAccount answered HTTP %d: %s", code, lastLines(body, 3))
	}
	return nil
}

// get returns the status code and the first 2 KiB of the body of a GET.
func get(ctx context.Context, c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return resp.StatusCode, string(body), nil
}

// lastLines keeps the last n lines of s on one line (readyz lists every
// check; the failing ones are at the end).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// kubeconfigName names the cluster, user and context of vc's kubeconfig:
// "vnest_<namespace>_<name>". The namespace is in it so that kubeconfigs of
// VirtualClusters of the same name merge side by side (kubectl keeps the
// first of a name and drops the rest), and '_' is in no namespace or name,
// so no two VirtualClusters share one.
func kubeconfigName(vc *v1alpha1.VirtualCluster) string {
	return "vnest_" + vc.Namespace + "_" + vc.Name
}

// kubeconfigFor renders a kubeconfig for server with the admin identity
// embedded; name is used for the cluster, user and context.
func kubeconfigFor(name, server string, admin adminCredentials) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: admin.CA}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: admin.Cert, ClientKeyData: admin.Key}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}
