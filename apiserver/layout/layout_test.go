package layout

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vnest-dev/vnest/internal/pki"
)

// TestEnsurePKICSRSignerCA: the CSR signer has a CA of its own, not the tenant CA that the
// kubelet proxy trusts, and a PKI directory from before it gains it with nothing else reissued.
func TestEnsurePKICSRSignerCA(t *testing.T) {
	dir := t.TempDir()
	files, err := EnsurePKI(dir, ServingCertSpec(ServingNames{}))
	if err != nil {
		t.Fatal(err)
	}
	tenantCA, signerCA := readCert(t, files.CA.CertFile), readCert(t, files.CSRSignerCA.CertFile)
	if !signerCA.IsCA || signerCA.Subject.CommonName != CSRSignerCACommonName {
		t.Errorf("CSR signer CA: IsCA %v, CN %q; want a CA named %s", signerCA.IsCA, signerCA.Subject.CommonName, CSRSignerCACommonName)
	}
	if signerCA.Equal(tenantCA) || bytes.Equal(signerCA.RawSubjectPublicKeyInfo, tenantCA.RawSubjectPublicKeyInfo) {
		t.Fatal("the CSR signer's CA is the tenant CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(tenantCA)
	if _, err := signerCA.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("the CSR signer's CA verifies against the tenant CA")
	}

	// A tenant from before the CSR signer's CA: it is created, nothing else changes.
	before := readDir(t, dir)
	for _, f := range []string{files.CSRSignerCA.CertFile, files.CSRSignerCA.KeyFile} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
		delete(before, filepath.Base(f))
	}
	if _, err := EnsurePKI(dir, ServingCertSpec(ServingNames{})); err != nil {
		t.Fatal(err)
	}
	after := readDir(t, dir)
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s changed while adding the CSR signer's CA", name)
		}
	}
	if readCert(t, files.CSRSignerCA.CertFile).Subject.CommonName != CSRSignerCACommonName || len(after[CSRSignerCAName+".key"]) == 0 {
		t.Error("the CSR signer's CA was not created in an older PKI directory")
	}

	// Half of it is an error, as for the other CAs: its key signed every CSR's certificate.
	if err := os.Remove(files.CSRSignerCA.KeyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsurePKI(dir, ServingCertSpec(ServingNames{})); err == nil {
		t.Error("EnsurePKI with csr-signer-ca.crt but no key: no error")
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(readPEM(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

// TestEnsurePKIKeepsPresentCA: a CA that is present is used as it is, also when it expires within
// the 30 days after which pki.LoadOrCreateCA would make a new one. The leaves present were
// signed by it and are never reissued here, so a new CA (and a new key in place of the owner's)
// left every certificate unverifiable: the apiserver trusted none of its own clients.
func TestEnsurePKIKeepsPresentCA(t *testing.T) {
	dir := t.TempDir()
	files, err := EnsurePKI(dir, ServingCertSpec(ServingNames{}))
	if err != nil {
		t.Fatal(err)
	}
	// The owner's CA, 20 days from its end: the same key and subject, so the leaves verify.
	old := readCert(t, files.CA.CertFile)
	key := readKey(t, files.CA.KeyFile)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: old.Subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(20 * 24 * time.Hour), KeyUsage: old.KeyUsage, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.CA.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	before := readDir(t, dir)

	if _, err := EnsurePKI(dir, ServingCertSpec(ServingNames{})); err != nil {
		t.Fatal(err)
	}
	after := readDir(t, dir)
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s changed: a present file was replaced", name)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, files.CA.CertFile))
	for _, f := range []string{files.Serving.CertFile, files.Admin.CertFile, files.KubeletClient.CertFile} {
		if _, err := readCert(t, f).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s does not verify against %s: %v", filepath.Base(f), filepath.Base(files.CA.CertFile), err)
		}
	}
}

func readKey(t *testing.T, file string) crypto.Signer {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(readPEM(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return key.(crypto.Signer)
}

// readPEM returns the content of the first PEM block of file.
func readPEM(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	return block.Bytes
}

// TestEnsurePKIFinishesInterruptedPair: a first start that died while it wrote a certificate,
// after its key (pki writes the certificate aside first and renames it last), is finished by the
// next start instead of refused as half present ("exists but ... is missing") at every start.
func TestEnsurePKIFinishesInterruptedPair(t *testing.T) {
	dir := t.TempDir()
	files, err := EnsurePKI(dir, ServingCertSpec(ServingNames{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{files.Serving.CertFile, files.ServiceAccountPub} {
		if err := os.Rename(f, f+".tmp"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := EnsurePKI(dir, ServingCertSpec(ServingNames{})); err != nil {
		t.Fatalf("EnsurePKI after a start that died between a key and its certificate: %v", err)
	}
	for _, f := range []string{files.Serving.CertFile, files.ServiceAccountPub} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}

// TestRenewPKICAEnding: with the tenant CA 20 days from its end, a leaf that ends before it (the
// admin's, in a day) is renewed up to the CA's end, which is worth 19 days, and RenewPKI says both
// that it renewed it and that the CA expires: a renewal cannot outlive the CA, which it never
// replaces.
func TestRenewPKICAEnding(t *testing.T) {
	dir := t.TempDir()
	files, err := EnsurePKI(dir, ServingCertSpec(ServingNames{}))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	resign(t, files.CA.CertFile, files.CA, 20*day)
	resign(t, files.Admin.CertFile, files.CA, day)

	renewed, err := RenewPKI(dir)
	if len(renewed) != 1 || renewed[0] != AdminCertName {
		t.Errorf("renewed %v, want [%s]", renewed, AdminCertName)
	}
	if err == nil || !strings.Contains(err.Error(), "expires at") {
		t.Errorf("RenewPKI error = %v, want one saying that %s expires", err, filepath.Base(files.CA.CertFile))
	}
	if ca, admin := readCert(t, files.CA.CertFile), readCert(t, files.Admin.CertFile); !admin.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("admin certificate ends at %s, want its CA's end %s", admin.NotAfter, ca.NotAfter)
	}
}

// resign signs the certificate file again as it is, with the key of ca (the CA's own, for the
// CA), but ending in left.
func resign(t *testing.T, file string, ca pki.Pair, left time.Duration) {
	t.Helper()
	cert := readCert(t, file)
	cert.NotAfter = time.Now().Add(left)
	parent := readCert(t, ca.CertFile)
	if file == ca.CertFile {
		parent = cert
	}
	key := readKey(t, ca.KeyFile)
	der, err := x509.CreateCertificate(rand.Reader, cert, parent, cert.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
