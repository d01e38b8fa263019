package kubeletproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/pki"
)

// testCA is a tenant CA in a temporary directory.
type testCA struct {
	dir  string
	ca   *pki.Authority
	pool *CA
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{dir: dir, ca: ca, pool: NewCA(ca.Cert)}
}

// issue returns a key pair for spec signed by the CA.
func (c *testCA) issue(t testing.TB, name string, spec pki.Spec) tls.Certificate {
	t.Helper()
	p, err := c.ca.Ensure(c.dir, name, spec)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			t.Fatal(err)
		}
	}
	return pair
}

func (c *testCA) kubeletClient(t testing.TB) tls.Certificate {
	return c.issue(t, layout.KubeletClientCertName, layout.KubeletClientCertSpec())
}

// reissue is a new certificate of the CA for name and spec, as the manager renews one or a
// tenant user got one through a CSR (signed by the tenant CA, before it had a CA of its own).
func (c *testCA) reissue(t testing.TB, name string, spec pki.Spec) tls.Certificate {
	t.Helper()
	if err := os.Remove(filepath.Join(c.dir, name+".crt")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return c.issue(t, name, spec)
}

// intermediate is a CA of its own name that c signed, and its certificate so signed. vnest
// makes none: the manager signs every leaf with the tenant CA itself.
func (c *testCA) intermediate(t *testing.T) (*testCA, *x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	sub, err := pki.LoadOrCreateCA(dir, "ca", "test-intermediate-ca")
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, sub.Cert, c.ca.Cert, sub.Key.Public(), c.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{dir: dir, ca: sub}, cert
}

func TestIdentify(t *testing.T) {
	a, b, shared, stranger, pinned := newTestCA(t), newTestCA(t), newTestCA(t), newTestCA(t), newTestCA(t)
	sub, subCert := a.intermediate(t)
	issued := pinned.kubeletClient(t)
	minted := pinned.reissue(t, layout.KubeletClientCertName, layout.KubeletClientCertSpec())
	tenants := []Tenant{
		{ClusterKey: "a-1", CA: a.pool},
		{ClusterKey: "b-2", CA: b.pool},
		{ClusterKey: "no-ca"}, // a kubeconfig without CA data identifies nobody
		{ClusterKey: "twin-1", CA: shared.pool},
		{ClusterKey: "twin-2", CA: shared.pool},
		{ClusterKey: "pinned-3", CA: pinned.pool, KubeletClient: issued.Leaf.Raw},
	}
	chain := func(c tls.Certificate) []*x509.Certificate { return []*x509.Certificate{c.Leaf} }
	tests := map[string]struct {
		chain    []*x509.Certificate
		now      time.Time
		want     string
		wantCode int
		// wantPinMismatch: the refusal says the caller's certificate is not the pinned one,
		// so that the syncer re-reads the pin.
		wantPinMismatch bool
	}{
		"tenant a":       {chain: chain(a.kubeletClient(t)), want: "a-1"},
		"tenant b":       {chain: chain(b.kubeletClient(t)), want: "b-2"},
		"no certificate": {wantCode: http.StatusUnauthorized},
		// Such as the tenant's CSR signer's (layout.CSRSignerCAName): a CSR names its own
		// subject, so one can ask for the kubelet client's.
		"a CA no tenant has": {
			chain: chain(stranger.kubeletClient(t)), wantCode: http.StatusForbidden,
		},
		"the tenant admin, past the tenant's RBAC": {
			chain: chain(a.issue(t, layout.AdminCertName, layout.AdminCertSpec())), wantCode: http.StatusForbidden,
		},
		"another client certificate of the tenant CA": {
			chain: chain(a.issue(t, "alice", pki.Spec{CommonName: "alice", Client: true})), wantCode: http.StatusForbidden,
		},
		"the kubelet client name on a serving certificate": {
			chain: chain(a.issue(t, "server", pki.Spec{CommonName: layout.KubeletClientUser, Server: true})), wantCode: http.StatusForbidden,
		},
		"expired": {
			chain: chain(a.kubeletClient(t)), now: time.Now().Add(2 * 365 * 24 * time.Hour), wantCode: http.StatusForbidden,
		},
		"two tenants with one CA": {
			chain: chain(shared.kubeletClient(t)), wantCode: http.StatusForbidden,
		},
		// Intermediates the caller sends are not used: every Verify of a tenant CA would
		// build chains through them, up to 100 signature checks with keys of the caller's
		// choosing, before the caller is known.
		"the kubelet client name from an intermediate CA the tenant CA signed": {
			chain: append(chain(sub.kubeletClient(t)), subCert), wantCode: http.StatusForbidden,
		},
		"the pinned certificate": {chain: chain(issued), want: "pinned-3"},
		// A CSR's, from before the CSR signer had a CA of its own.
		"another kubelet client certificate of the pinned tenant's CA": {
			chain: chain(minted), wantCode: http.StatusForbidden, wantPinMismatch: true,
		},
		"the pinned certificate, expired": {
			chain: chain(issued), now: time.Now().Add(2 * 365 * 24 * time.Hour), wantCode: http.StatusForbidden,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = time.Now()
			}
			got, err := identify(tc.chain, tenants, now)
			if tc.wantCode != 0 {
				var se *statusError
				if !errors.As(err, &se) || se.code != tc.wantCode {
					t.Fatalf("identify = %q, %v; want HTTP %d", got.ClusterKey, err, tc.wantCode)
				}
				var pm *pinMismatch
				if errors.As(err, &pm) != tc.wantPinMismatch || (pm != nil && pm.tenant.ClusterKey != "pinned-3") {
					t.Fatalf("identify: %v; want a pin mismatch of pinned-3: %v", err, tc.wantPinMismatch)
				}
				return
			}
			if err != nil || got.ClusterKey != tc.want {
				t.Fatalf("identify = %q, %v; want %s", got.ClusterKey, err, tc.want)
			}
		})
	}
}

// TestIdentifyChecksOneCA: every tenant CA has the same subject, so a leaf naming that issuer,
// anyone's, had its signature checked against each tenant's CA. It is checked against the CA
// whose SubjectKeyId is its AuthorityKeyId alone, and against none when that is no tenant's;
// only a CA without a key id, which may have signed any leaf, is checked for every leaf.
func TestIdentifyChecksOneCA(t *testing.T) {
	var cas []*testCA
	var tenants []Tenant
	for i := range 5 {
		ca := newTestCA(t)
		cas = append(cas, ca)
		tenants = append(tenants, Tenant{ClusterKey: fmt.Sprintf("t-%d", i), CA: ca.pool})
	}
	stranger := newTestCA(t)
	// Someone else's CA certificate may have no key id; Go's x509 gives every CA one.
	bare := newTestCA(t)
	bareCert := *bare.ca.Cert
	bareCert.SubjectKeyId = nil
	withBare := append(slices.Clip(tenants), Tenant{ClusterKey: "no-key-id", CA: NewCA(&bareCert)})
	// A leaf of t-0's CA without an AuthorityKeyId, as a CA certificate without a key id signs.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	parent := *cas[0].ca.Cert
	parent.SubjectKeyId = nil
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: layout.KubeletClientUser},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &parent, key.Public(), cas[0].ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	noAKID, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}

	checks := 0
	check := verify
	verify = func(leaf *x509.Certificate, opts x509.VerifyOptions) error {
		checks++
		return check(leaf, opts)
	}
	t.Cleanup(func() { verify = check })
	for name, tc := range map[string]struct {
		tenants    []Tenant
		leaf       *x509.Certificate
		want       string // "": refused
		wantChecks int
	}{
		"a tenant's leaf":                    {tenants: tenants, leaf: cas[3].kubeletClient(t).Leaf, want: "t-3", wantChecks: 1},
		"a leaf of a CA no tenant has":       {tenants: tenants, leaf: stranger.kubeletClient(t).Leaf, wantChecks: 0},
		"a leaf without an authority key id": {tenants: tenants, leaf: noAKID, wantChecks: 0},
		"a tenant's leaf, with a CA without a key id": {
			tenants: withBare, leaf: cas[3].kubeletClient(t).Leaf, want: "t-3", wantChecks: 2,
		},
		"a leaf of the CA without a key id": {tenants: withBare, leaf: bare.kubeletClient(t).Leaf, want: "no-key-id", wantChecks: 1},
		"a leaf of a CA no tenant has, with a CA without a key id": {
			tenants: withBare, leaf: stranger.kubeletClient(t).Leaf, wantChecks: 1,
		},
	} {
		t.Run(name, func(t *testing.T) {
			checks = 0
			got, err := identify([]*x509.Certificate{tc.leaf}, tc.tenants, time.Now())
			if got.ClusterKey != tc.want || (err == nil) != (tc.want != "") {
				t.Errorf("identify = %q, %v; want %q", got.ClusterKey, err, tc.want)
			}
			if checks != tc.wantChecks {
				t.Errorf("%d signature checks, want %d", checks, tc.wantChecks)
			}
		})
	}
}

// TestCAFromPEM: a kubeconfig's certificate-authority-data may hold several certificates, and
// what is no certificate is skipped, as x509.CertPool.AppendCertsFromPEM does.
func TestCAFromPEM(t *testing.T) {
	a, b := newTestCA(t), newTestCA(t)
	pemOf := func(c *testCA) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ca.Cert.Raw})
	}
	bundle := slices.Concat(pemOf(a), []byte("not PEM\n"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), pemOf(b))
	ca := CAFromPEM(bundle)
	for _, c := range []*testCA{a, b} {
		if got, err := identify([]*x509.Certificate{c.kubeletClient(t).Leaf}, []Tenant{{ClusterKey: "bundle", CA: ca}}, time.Now()); err != nil || got.ClusterKey != "bundle" {
			t.Errorf("a leaf of a CA of the bundle: identify = %q, %v; want bundle", got.ClusterKey, err)
		}
	}
	for _, data := range [][]byte{nil, []byte("not PEM"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})} {
		if ca := CAFromPEM(data); ca != nil {
			t.Errorf("CAFromPEM(%q) = %v, want nil", data, ca)
		}
	}
}
