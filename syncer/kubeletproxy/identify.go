package kubeletproxy

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
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
	CA *CA
	// KubeletClient pins the kubelet client certificate the manager issued the tenant
	// apiserver (DER, from the tenant's PKI Secret): only that leaf identifies the tenant. The
	// tenant CA signed more of that name: certificates of CertificateSigningRequests, until
	// the CSR signer had a CA of its own, and they stay valid until they expire. Nil when the
	// syncer cannot read the pin; the CA and the name alone identify the tenant then.
	KubeletClient []byte
	// Pods lists the tenant's pods. A super pod is reachable only while the tenant pod it was
	// made from (same name and UID) exists.
	Pods corelisters.PodLister
}

// CA is a tenant CA as identify checks leaves against it: its certificates (a kubeconfig's
// certificate-authority-data may hold more than one) and their SubjectKeyIds. Make it with NewCA.
type CA struct {
	pool *x509.CertPool
	// keyIDs are the certificates' SubjectKeyIds: a leaf whose AuthorityKeyId is none of
	// them was not signed by this CA, and is not checked against it.
	keyIDs [][]byte
	// anyLeaf: a certificate has no SubjectKeyId, so every leaf is checked against the CA.
	// vnest's CAs have one (Go's x509 makes it for a CA, and puts it in the leaves it signs
	// as their AuthorityKeyId), but the PKI of a tenant apiserver run on its own may be
	// someone else's (layout.EnsurePKI keeps a CA it finds).
	anyLeaf bool
}

// NewCA returns the CA of certs; nil without any.
func NewCA(certs ...*x509.Certificate) *CA {
	if len(certs) == 0 {
		return nil
	}
	ca := &CA{pool: x509.NewCertPool()}
	for _, c := range certs {
		ca.pool.AddCert(c)
		if len(c.SubjectKeyId) == 0 {
			ca.anyLeaf = true
		} else {
			ca.keyIDs = append(ca.keyIDs, c.SubjectKeyId)
		}
	}
	return ca
}

// CAFromPEM returns the CA of the PEM certificates in data, read as
// x509.CertPool.AppendCertsFromPEM reads them (what is no certificate is skipped); nil without
// any.
func CAFromPEM(data []byte) *CA {
	var certs []*x509.Certificate
	for len(data) > 0 {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			certs = append(certs, cert)
		}
	}
	return NewCA(certs...)
}

// mayHaveSigned reports whether leaf names one of the CA's keys as its issuer's (or the CA
// has a certificate without a key id, see anyLeaf): only then is its signature checked.
func (ca *CA) mayHaveSigned(leaf *x509.Certificate) bool {
	if ca.anyLeaf {
		return true
	}
	for _, id := range ca.keyIDs {
		if len(leaf.AuthorityKeyId) > 0 && bytes.Equal(id, leaf.AuthorityKeyId) {
			return true
		}
	}
	return false
}

// verify checks leaf's signature and validity as identify asks; a variable for the tests,
// which count the signature checks.
var verify = func(leaf *x509.Certificate, opts x509.VerifyOptions) error {
	_, err := leaf.Verify(opts)
	return err
}

// pinMismatch is identify's refusal of a certificate that the tenant's CA signed for
// layout.KubeletClientUser but that is not the pinned one: a tenant user's, minted through a
// CSR, or the manager's renewal that the syncer has not read yet (Config.PinMismatch).
type pinMismatch struct {
	tenant Tenant
	err    error
}

func (e *pinMismatch) Error() string { return e.err.Error() }
func (e *pinMismatch) Unwrap() error { return e.err }

// identify returns the tenant whose apiserver presented chain (leaf first): the leaf must be
// a client certificate for layout.KubeletClientUser that verifies against the CA of exactly
// one tenant, and be the tenant's pinned certificate when it has one (the CA stays checked as
// well). Two tenants with one CA would be a broken PKI; neither is trusted then.
//
// The leaf must be signed by the tenant CA itself, as the manager signs it: the rest of the
// chain is not used. Anyone who reaches the listener runs identify, and intermediates of the
// caller's making would have every tenant's Verify build chains through them, up to 100
// signature checks each with keys of the caller's choosing (large RSA keys make each costly),
// for every tenant, before the caller is known. For the same reason a leaf is checked only against
// the CAs whose SubjectKeyId is its AuthorityKeyId (CA.mayHaveSigned): every tenant CA has
// the same subject, so a leaf naming that issuer, anyone's, was checked against each of them,
// a signature check per tenant; now it costs one, or none when its key id is no tenant's.
func identify(chain []*x509.Certificate, tenants []Tenant, now time.Time) (Tenant, error) {
	if len(chain) == 0 {
		return Tenant{}, unauthorized("a client certificate of a tenant apiserver is required")
	}
	leaf := chain[0]
	var matches []Tenant
	for _, t := range tenants {
		if t.CA == nil || !t.CA.mayHaveSigned(leaf) {
			continue
		}
		err := verify(leaf, x509.VerifyOptions{
			Roots: t.CA.pool, CurrentTime: now,
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
	t := matches[0]
	if t.KubeletClient != nil && !bytes.Equal(leaf.Raw, t.KubeletClient) {
		return Tenant{}, &pinMismatch{tenant: t, err: forbidden(
			"the client certificate %q (serial %s) of tenant %s's CA is not the kubelet client certificate the manager issued its apiserver", leaf.Subject.CommonName, leaf.SerialNumber, t.ClusterKey)}
	}
	return t, nil
}
