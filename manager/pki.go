package manager

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/pki"
)

// Keys of the PKI Secret besides the layout's PKI files: the tenant's etcd
// client credentials, in the same Secret so one volume gives the cluster
// provisioner's pod everything it needs.
const (
	EtcdCAFile         = "etcd-ca.crt"
	etcdClientCertName = "etcd-client"
	EtcdClientCertFile = etcdClientCertName + ".crt"
	EtcdClientKeyFile  = etcdClientCertName + ".key"
)

// pkiFileNames are every key the PKI Secret may hold; each is a file name
// in the tenant's PKI directory (layout.PKIFilesIn).
var pkiFileNames = func() []string {
	var names []string
	for _, n := range []string{layout.CAName, layout.FrontProxyCAName, layout.CSRSignerCAName, layout.ServingCertName,
		layout.AdminCertName, layout.ControllerManagerCertName, layout.FrontProxyClientCertName, layout.KubeletClientCertName,
		etcdClientCertName} {
		names = append(names, n+".crt", n+".key")
	}
	return append(names, layout.ServiceAccountKeyName+".key", layout.ServiceAccountKeyName+".pub", EtcdCAFile)
}()

// pkiRequest is what the tenant PKI must certify.
type pkiRequest struct {
	Serving pki.Spec
	// EtcdUser is the CommonName of the tenant's etcd client certificate.
	EtcdUser string
	// Etcd is the tenant's storage: its CA bundle goes to the tenant, and
	// its signer (when there is one) issues the tenant's client
	// certificate; without one the tenant shares the admin certificate,
	// which the caller allows only when etcd auth is off.
	Etcd *etcdCreds
}

// buildTenantPKI returns the PKI Secret data for req, starting from existing
// (the current Secret data, nil at first). Whatever exists and still matches
// is kept byte for byte: the CAs, the service-account key and every client
// certificate live as long as the Secret, so a manager or control-plane
// restart never invalidates a credential. Only a leaf that no longer
// matches (the serving certificate after a new SAN, a certificate close to
// expiry) is reissued, by the same CA. It is built in memory: the keys go
// from the Secret to the Secret and never touch the manager's disk, where a
// crash half way would have left them.
func buildTenantPKI(existing map[string][]byte, req pkiRequest) (map[string][]byte, error) {
	for _, pair := range [][2]string{
		{layout.CAName + ".crt", layout.CAName + ".key"},
		{layout.FrontProxyCAName + ".crt", layout.FrontProxyCAName + ".key"},
		{layout.CSRSignerCAName + ".crt", layout.CSRSignerCAName + ".key"},
		{layout.ServiceAccountKeyName + ".key", layout.ServiceAccountKeyName + ".pub"},
	} {
		if (len(existing[pair[0]]) == 0) != (len(existing[pair[1]]) == 0) {
			return nil, failure(v1alpha1.ReasonPKIFailed,
				"the PKI Secret has %s without %s: restore it from a backup, or delete the Secret to start over (that invalidates every credential of the tenant)",
				presentOf(existing, pair), absentOf(existing, pair))
		}
	}
	files := pki.Files{}
	for _, name := range pkiFileNames {
		if data := existing[name]; len(data) > 0 {
			files[name] = data
		}
	}
	if err := issueTenantPKI(files, req); err != nil {
		return nil, failure(v1alpha1.ReasonPKIFailed, "%v", err)
	}
	out := map[string][]byte{}
	for _, name := range pkiFileNames {
		if data, ok := files[name]; ok {
			out[name] = data
		}
	}
	return out, nil
}

func issueTenantPKI(files pki.Files, req pkiRequest) error {
	ca, err := files.LoadOrCreateCA(layout.CAName, "vnest-tenant-ca")
	if err != nil {
		return err
	}
	frontProxyCA, err := files.LoadOrCreateCA(layout.FrontProxyCAName, "vnest-tenant-front-proxy-ca")
	if err != nil {
		return err
	}
	// Newer than the first PKI Secrets: created when missing. It signs
	// nothing here; the tenant's controller manager signs CSRs with it.
	if _, err := files.LoadOrCreateCA(layout.CSRSignerCAName, layout.CSRSignerCACommonName); err != nil {
		return err
	}
	for _, leaf := range []struct {
		ca   *pki.Authority
		name string
		spec pki.Spec
	}{
		{ca, layout.ServingCertName, req.Serving},
		{ca, layout.AdminCertName, layout.AdminCertSpec()},
		{ca, layout.ControllerManagerCertName, layout.ControllerManagerCertSpec()},
		{frontProxyCA, layout.FrontProxyClientCertName, layout.FrontProxyClientCertSpec()},
		// Newer than the first PKI Secrets: issued when missing, like any leaf.
		{ca, layout.KubeletClientCertName, layout.KubeletClientCertSpec()},
	} {
		if _, err := files.Ensure(leaf.ca, leaf.name, leaf.spec); err != nil {
			return err
		}
	}
	if _, _, err := files.EnsureKey(layout.ServiceAccountKeyName); err != nil {
		return err
	}
	return issueEtcdClient(files, req)
}

// issueEtcdClient puts the tenant's etcd CA bundle and client pair in files.
func issueEtcdClient(files pki.Files, req pkiRequest) error {
	etcd := req.Etcd
	setOrDelete(files, EtcdCAFile, etcd.CA)
	if etcd.Signer != nil {
		a := &pki.Authority{Cert: etcd.Signer.Cert, Key: etcd.Signer.Key}
		_, err := files.Ensure(a, etcdClientCertName, pki.Spec{CommonName: req.EtcdUser, Client: true})
		return err
	}
	setOrDelete(files, EtcdClientCertFile, etcd.Cert)
	setOrDelete(files, EtcdClientKeyFile, etcd.Key)
	return nil
}

// setOrDelete sets the file name to data, or deletes it when there is no data.
func setOrDelete(files pki.Files, name string, data []byte) {
	if len(data) > 0 {
		files[name] = data
	} else {
		delete(files, name)
	}
}

// sameData reports whether two Secret data maps are equal.
func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func presentOf(m map[string][]byte, pair [2]string) string {
	if len(m[pair[0]]) > 0 {
		return pair[0]
	}
	return pair[1]
}

func absentOf(m map[string][]byte, pair [2]string) string {
	if len(m[pair[0]]) > 0 {
		return pair[1]
	}
	return pair[0]
}

// servingSpec is the serving certificate for the names a provisioner
// reported plus spec.controlPlane.expose.extraSANs.
func servingSpec(vc *v1alpha1.VirtualCluster, names layout.ServingNames) pki.Spec {
	names.ClusterDomain = clusterDomain(vc)
	names.KubernetesServiceIP = kubernetesServiceIP
	if cp := vc.Spec.ControlPlane; cp != nil && cp.Expose != nil {
		for _, san := range cp.Expose.ExtraSANs {
			if ip := net.ParseIP(san); ip != nil {
				names.IPs = append(names.IPs, ip)
			} else {
				names.DNSNames = append(names.DNSNames, strings.ToLower(san))
			}
		}
	}
	return layout.ServingCertSpec(names)
}

// etcdClientIssuable explains why a tenant with etcd auth on cannot get
// a certificate of its own; "" when it can.
func etcdClientIssuable(etcd *etcdCreds) string {
	if etcd.Signer != nil {
		return ""
	}
	return fmt.Sprintf("etcd auth is on, so the tenant needs a client certificate of its own, but the %s has no CA key to issue one: add %s (the key of the CA in %s), or start the manager with --etcd-ca-keyfile for the default storage",
		etcd.Source, EtcdCAKeyKey, EtcdCAKey)
}

// kubernetesServiceIP is the ClusterIP of the tenant's `kubernetes` Service:
// the first address of the default service range of `vnest apiserver`. With
// --tenant-service-cidr the Service has the first address of that range
// instead, which is the super cluster's own `kubernetes` Service: nothing
// reaches the tenant apiserver there, so the certificate need not name it.
var kubernetesServiceIP = func() net.IP {
	_, cidr, err := net.ParseCIDR(layout.DefaultServiceCIDR)
	if err != nil {
		panic(err)
	}
	ip := slices.Clone(cidr.IP.To4())
	ip[3]++
	return ip
}()

func clusterDomain(vc *v1alpha1.VirtualCluster) string {
	if vc.Spec.ClusterDomain == "" {
		return layout.DefaultClusterDomain
	}
	return vc.Spec.ClusterDomain
}
