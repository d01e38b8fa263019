package kubeletproxy

import (
	"crypto/x509"
	"strings"
	"time"

	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/vnest-dev/vnest/apiserver/layout"
)

// Tenant is one tenant the proxy serves.
type Tenant struct {
	// ClusterKey is the VirtualCluster's status.clusterKey; it names the super namespaces.
	ClusterKey string
	// CA is the tenant CA (from the tenant's kubeconfig). It signed the kubelet client
	// certificate of the tenant apiserver, and no other tenant's; never a certificate of a
	// tenant's CertificateSigningRequest (layout.CSRSignerCAName), so it must not hold the CSR
	// signer's CA.
	CA *x509.CertPool
	// Pods lists the tenant's pods. A super pod is reachable only while the tenant pod it was
	// made from (same name and UID) exists.
	Pods corelisters.PodLister
}

// identify returns the tenant whose apiserver presented chain (leaf first): the leaf must be
// a client certificate for layout.KubeletClientUser that verifies against the CA of exactly
// one tenant. Two tenants with one CA would be a broken PKI; neither is trusted then.
func identify(chain []*x509.Certificate, tenants []Tenant, now time.Time) (Tenant, error) {
	if len(chain) == 0 {
		return Tenant{}, unauthorized("a client certificate of a tenant apiserver is required")
	}
	leaf := chain[0]
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	var matches []Tenant
	for _, t := range tenants {
		if t.CA == nil {
			continue
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: t.CA, Intermediates: intermediates, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err == nil {
			matches = append(matches, t)
		}
	}
	switch {
	case len(matches) == 0:
		return Tenant{}, forbidden("the client certificate %q is not signed by the CA of any tenant this syncer serves (or has expired)", leaf.Subject.CommonName)
	case len(matches) > 1:
		keys := make([]string, len(matches))
		for i, t := range matches {
			keys[i] = t.ClusterKey
		}
		return Tenant{}, forbidden("the client certificate is signed by a CA that tenants %s share; refusing all of them", strings.Join(keys, ", "))
	}
	if leaf.Subject.CommonName != layout.KubeletClientUser {
		return Tenant{}, forbidden("only the tenant apiserver's kubelet client certificate (CN %s) may use the kubelet proxy, not %q", layout.KubeletClientUser, leaf.Subject.CommonName)
	}
	return matches[0], nil
}
