package layout

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/vnest-dev/vnest/internal/pki"
)

// Base names of the PKI files of a tenant control plane. Certificates are
// NAME.crt + NAME.key, the service-account key pair is NAME.key + NAME.pub
// (the naming of internal/pki). They all live in one directory (--pki-dir,
// by default --state-dir).
const (
	// CAName is the tenant CA: it signs every certificate below but the
	// front-proxy client, client certificates are checked against it and the
	// root-ca publisher hands ca.crt to every namespace. It is also the only
	// CA the syncer's kubelet proxy trusts, so nothing a tenant user can get
	// signed may come from it: see CSRSignerCAName.
	CAName = "ca"
	// CSRSignerCAName signs the certificates of the tenant's
	// CertificateSigningRequests (kube-controller-manager's csrsigning). A
	// CSR chooses its own subject, so one signed by the tenant CA could be
	// the kubelet client's (KubeletClientUser) and reach every pod of the
	// tenant through the kubelet proxy past the tenant's RBAC. The tenant
	// apiserver trusts it for client certificates too (ClientCABundleFile),
	// so a client built from a CSR authenticates as upstream's does.
	CSRSignerCAName = "csr-signer-ca"
	// ServingCertName is the apiserver's TLS serving certificate; see ServingCertSpec.
	ServingCertName = "apiserver"
	// AdminCertName is the tenant admin's client certificate (O=system:masters).
	AdminCertName = "admin"
	// ControllerManagerCertName is the client certificate the in-process
	// controllers use to reach the apiserver (CN=system:kube-controller-manager).
	ControllerManagerCertName = "controller-manager"
	// FrontProxyCAName signs FrontProxyClientCertName; aggregated API servers
	// installed by the tenant trust requests proxied with it.
	FrontProxyCAName = "front-proxy-ca"
	// FrontProxyClientCertName is the apiserver's identity towards aggregated API servers.
	FrontProxyClientCertName = "front-proxy-client"
	// ServiceAccountKeyName is the key pair that signs and verifies the
	// tenant's service-account tokens.
	ServiceAccountKeyName = "sa"
	// KubeletClientCertName is the apiserver's identity towards "kubelets":
	// the syncer's kubelet proxy, which serves the virtual nodes' kubelet
	// API (logs, exec, attach, port-forward). See KubeletClientCertSpec.
	KubeletClientCertName = "kubelet-client"
)

// Files written into the state directory (never into the PKI directory).
const (
	// AdminKubeconfigFile is written once the control plane is ready and
	// removed when Run starts, so its presence means "ready".
	AdminKubeconfigFile = "admin.kubeconfig"
	// ControllerManagerKubeconfigFile is what the in-process controllers use.
	ControllerManagerKubeconfigFile = "controller-manager.kubeconfig"
	// ClientCABundleFile is the apiserver's --client-ca-file: the tenant CA
	// and the CSR signer's CA, written at every start (the PKI directory may
	// be a read-only mount).
	ClientCABundleFile = "client-ca.crt"
)

// Fixed identities of the client certificates.
const (
	adminUser             = "vnest:tenant-admin"
	controllerManagerUser = "system:kube-controller-manager"
	frontProxyClientUser  = "front-proxy-client"
)

// KubeletClientUser is the CommonName of the kubelet client certificate.
// The syncer's kubelet proxy accepts only this name, signed by the tenant
// CA, so no other certificate of the tenant CA (the admin's) can reach pods
// past the tenant's RBAC; a certificate a tenant user got through a
// CertificateSigningRequest, whatever its name, comes from the CSR signer's
// CA (CSRSignerCAName), which the proxy does not trust. No RBAC binding names it: in the tenant apiserver it may only do
// what every authenticated user may.
const KubeletClientUser = "vnest:kubelet-client"

// CSRSignerCACommonName is the subject of the CSR signer's CA when it is created.
const CSRSignerCACommonName = "vnest-tenant-csr-signer-ca"

// AdminCertSpec is the admin client certificate: a member of system:masters.
func AdminCertSpec() pki.Spec {
	return pki.Spec{CommonName: adminUser, Organization: []string{"system:masters"}, Client: true}
}

// ControllerManagerCertSpec is the client certificate of the in-process
// controller manager. Every controller uses it (no per-controller service
// accounts: creating one and a token for each of ~25 controllers took
// seconds of a tenant's start-up), so it is a member of system:masters like
// the admin: the controllers are part of the tenant's control plane, in
// the same process as the apiserver that holds the CA key.
func ControllerManagerCertSpec() pki.Spec {
	return pki.Spec{CommonName: controllerManagerUser, Organization: []string{"system:masters"}, Client: true}
}

// FrontProxyClientCertSpec is signed by the front-proxy CA, not the tenant CA.
func FrontProxyClientCertSpec() pki.Spec {
	return pki.Spec{CommonName: frontProxyClientUser, Client: true}
}

// KubeletClientCertSpec is the certificate kube-apiserver presents to
// kubelets (--kubelet-client-certificate), signed by the tenant CA.
func KubeletClientCertSpec() pki.Spec {
	return pki.Spec{CommonName: KubeletClientUser, Client: true}
}

// ServingNames are what clients use to reach a tenant apiserver.
type ServingNames struct {
	// ClusterDomain gives kubernetes.default.svc.<domain>.
	ClusterDomain string
	// KubernetesServiceIP is the ClusterIP of the tenant's `kubernetes`
	// Service (the first address of the service CIDR).
	KubernetesServiceIP net.IP
	// IPs and DNSNames are every other address clients use: the advertise
	// address, a Service or load balancer in front of the apiserver, ...
	IPs      []net.IP
	DNSNames []string
}

// ServingCertSpec is the serving certificate for names. It always covers
// localhost, 127.0.0.1 and the in-cluster names of the `kubernetes` Service.
func ServingCertSpec(names ServingNames) pki.Spec {
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"}
	if names.ClusterDomain != "" {
		dns = append(dns, "kubernetes.default.svc."+names.ClusterDomain)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4()}
	if names.KubernetesServiceIP != nil {
		ips = append(ips, names.KubernetesServiceIP)
	}
	return pki.Spec{
		CommonName: "kube-apiserver",
		DNSNames:   appendNew(dns, names.DNSNames, func(a, b string) bool { return a == b }),
		IPs:        appendNew(ips, names.IPs, net.IP.Equal),
		Server:     true,
	}
}

func appendNew[T any](to, from []T, eq func(a, b T) bool) []T {
	for _, f := range from {
		dup := false
		for _, t := range to {
			if eq(t, f) {
				dup = true
				break
			}
		}
		if !dup {
			to = append(to, f)
		}
	}
	return to
}

// PKIFiles are the paths of every PKI file in one directory.
type PKIFiles struct {
	CA, FrontProxyCA, CSRSignerCA        pki.Pair
	Serving, Admin, ControllerManager    pki.Pair
	FrontProxyClient, KubeletClient      pki.Pair
	ServiceAccountKey, ServiceAccountPub string
}

// PKIFilesIn returns the layout of dir.
func PKIFilesIn(dir string) PKIFiles {
	pair := func(name string) pki.Pair {
		return pki.Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	}
	return PKIFiles{
		CA:                pair(CAName),
		FrontProxyCA:      pair(FrontProxyCAName),
		CSRSignerCA:       pair(CSRSignerCAName),
		Serving:           pair(ServingCertName),
		Admin:             pair(AdminCertName),
		ControllerManager: pair(ControllerManagerCertName),
		FrontProxyClient:  pair(FrontProxyClientCertName),
		KubeletClient:     pair(KubeletClientCertName),
		ServiceAccountKey: filepath.Join(dir, ServiceAccountKeyName+".key"),
		ServiceAccountPub: filepath.Join(dir, ServiceAccountKeyName+".pub"),
	}
}

// EnsurePKI creates every file of the layout that is missing in dir, the
// serving certificate with serving. Files that exist are used as they are,
// never reissued: whoever provided them (the operator, from Secrets that may
// be mounted read-only) owns them. A half-present pair (a certificate without
// its key) is an error rather than silently replaced, because replacing the
// CA or the service-account key would invalidate every credential issued
// with it. RenewPKI renews the leaves of a directory its caller owns.
func EnsurePKI(dir string, serving pki.Spec) (PKIFiles, error) {
	files := PKIFilesIn(dir)
	loadCA := func(pair pki.Pair, name, commonName string) (*pki.Authority, error) {
		pki.CompletePair(pair.CertFile, pair.KeyFile)
		present, err := pairPresent(pair.CertFile, pair.KeyFile)
		if err != nil {
			return nil, err
		}
		// An existing CA as it is, even close to its expiry (LoadOrCreateCA would replace it,
		// and the leaves present, signed by it, would verify no more); created when missing.
		var ca *pki.Authority
		if present {
			ca, err = pki.LoadCA(dir, name)
		} else {
			ca, err = pki.LoadOrCreateCA(dir, name, commonName)
		}
		if err != nil {
			return nil, fmt.Errorf("tenant PKI: %w", err)
		}
		return ca, nil
	}
	ca, err := loadCA(files.CA, CAName, "vnest-tenant-ca")
	if err != nil {
		return files, err
	}
	frontProxyCA, err := loadCA(files.FrontProxyCA, FrontProxyCAName, "vnest-tenant-front-proxy-ca")
	if err != nil {
		return files, err
	}
	// Added after the first release: created when missing, and nothing
	// else changes (a CA of its own signs no leaf here).
	if _, err := loadCA(files.CSRSignerCA, CSRSignerCAName, CSRSignerCACommonName); err != nil {
		return files, err
	}
	for _, l := range leavesOf(files, ca, frontProxyCA, serving) {
		// A pair whose writing a crash stopped after the key is finished, not half present.
		pki.CompletePair(l.pair.CertFile, l.pair.KeyFile)
		present, err := pairPresent(l.pair.CertFile, l.pair.KeyFile)
		if err != nil {
			return files, err
		}
		if present {
			continue
		}
		if _, err := l.ca.Ensure(dir, l.name, l.spec); err != nil {
			return files, fmt.Errorf("tenant PKI: %w", err)
		}
	}
	pki.CompletePair(files.ServiceAccountPub, files.ServiceAccountKey)
	present, err := pairPresent(files.ServiceAccountKey, files.ServiceAccountPub)
	if err != nil {
		return files, err
	}
	if !present {
		if _, _, err := pki.EnsureKey(dir, ServiceAccountKeyName); err != nil {
			return files, fmt.Errorf("tenant PKI: %w", err)
		}
	}
	return files, nil
}

type leaf struct {
	pair pki.Pair
	ca   *pki.Authority
	name string
	spec pki.Spec
}

// leavesOf are the leaf certificates of files, each with its CA.
func leavesOf(files PKIFiles, ca, frontProxyCA *pki.Authority, serving pki.Spec) []leaf {
	return []leaf{
		{files.Serving, ca, ServingCertName, serving},
		{files.Admin, ca, AdminCertName, AdminCertSpec()},
		{files.ControllerManager, ca, ControllerManagerCertName, ControllerManagerCertSpec()},
		{files.FrontProxyClient, frontProxyCA, FrontProxyClientCertName, FrontProxyClientCertSpec()},
		// Added after the first release: PKI directories of older tenants
		// lack it, and it is created here like any missing leaf.
		{files.KubeletClient, ca, KubeletClientCertName, KubeletClientCertSpec()},
	}
}

// RenewPKI reissues the leaf certificates in dir that expire within 30 days
// (pki.Authority.Renew: a new key, the names and usages they had, a year but
// never past their CA's end) and returns the base names of those it reissued,
// in the order of the layout; it goes on past a leaf it cannot renew, and a CA
// that expires within 30 days is an error (its leaves renewed up to its end). The CAs and the service-account key are never
// replaced: every credential issued with them would go with them. Only for a
// PKI directory its caller owns, which EnsurePKI filled: EnsurePKI itself
// uses present files as they are, for whoever provided them.
func RenewPKI(dir string) ([]string, error) {
	ca, err := pki.LoadCA(dir, CAName)
	if err != nil {
		return nil, fmt.Errorf("tenant PKI: %w", err)
	}
	frontProxyCA, err := pki.LoadCA(dir, FrontProxyCAName)
	if err != nil {
		return nil, fmt.Errorf("tenant PKI: %w", err)
	}
	var renewed []string
	var errs []error
	for _, l := range leavesOf(PKIFilesIn(dir), ca, frontProxyCA, pki.Spec{}) {
		// Both when the CA expires within 30 days: renewed up to its end, and the error says so.
		ok, err := l.ca.Renew(dir, l.name)
		if ok {
			renewed = append(renewed, l.name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant PKI: %w", err))
		}
	}
	return renewed, errors.Join(errs...)
}

// pairPresent reports whether both files exist; exactly one of them is an error.
func pairPresent(a, b string) (bool, error) {
	aOK, err := exists(a)
	if err != nil {
		return false, err
	}
	bOK, err := exists(b)
	if err != nil {
		return false, err
	}
	switch {
	case aOK && bOK:
		return true, nil
	case aOK:
		return false, fmt.Errorf("tenant PKI: %s exists but %s is missing; provide it or remove both", a, b)
	case bOK:
		return false, fmt.Errorf("tenant PKI: %s exists but %s is missing; provide it or remove both", b, a)
	}
	return false, nil
}

func exists(file string) (bool, error) {
	_, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tenant PKI: %w", err)
	}
	return true, nil
}
