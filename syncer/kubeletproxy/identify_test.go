package kubeletproxy

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/pki"
)

// testCA is a tenant CA in a temporary directory.
type testCA struct {
	dir  string
	ca   *pki.Authority
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &testCA{dir: dir, ca: ca, pool: pool}
}

// issue returns a key pair for spec signed by the CA.
func (c *testCA) issue(t *testing.T, name string, spec pki.Spec) tls.Certificate {
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

func (c *testCA) kubeletClient(t *testing.T) tls.Certificate {
	return c.issue(t, layout.KubeletClientCertName, layout.KubeletClientCertSpec())
}

// reissue is a new certificate of the CA for name and spec, as the manager renews one or a
// tenant user got one through a CSR (signed by the tenant CA, before it had a CA of its own).
func (c *testCA) reissue(t *testing.T, name string, spec pki.Spec) tls.Certificate {
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
