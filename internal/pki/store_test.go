package pki

import (
	"crypto/tls"
	"crypto/x509"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFiles: a PKI built in memory is the one a directory would hold: a second pass in memory
// changes nothing, nor do the directory's functions on a copy of it, and a new name reissues
// the leaf alone, by the same CA.
func TestFiles(t *testing.T) {
	spec := Spec{CommonName: "kube-apiserver", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}
	build := func(t *testing.T, f Files) {
		t.Helper()
		ca, err := f.LoadOrCreateCA("ca", "test-ca")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Ensure(ca, "leaf", spec); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.EnsureKey("sa"); err != nil {
			t.Fatal(err)
		}
	}
	// certOf is the certificate name.crt in f, which must go with name.key.
	certOf := func(f Files, name string) *x509.Certificate {
		t.Helper()
		pair, err := tls.X509KeyPair(f[name+".crt"], f[name+".key"])
		if err != nil {
			t.Fatal(err)
		}
		return pair.Leaf
	}
	f := Files{}
	build(t, f)
	if diff := cmp.Diff([]string{"ca.crt", "ca.key", "leaf.crt", "leaf.key", "sa.key", "sa.pub"}, slices.Sorted(maps.Keys(f))); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	if err := certOf(f, "leaf").CheckSignatureFrom(certOf(f, "ca")); err != nil {
		t.Errorf("the leaf: %v", err)
	}

	again := maps.Clone(f)
	build(t, again)
	if diff := cmp.Diff(f, again); diff != "" {
		t.Errorf("a second pass changed files (-before +after):\n%s", diff)
	}

	dir := t.TempDir()
	for name, data := range f {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := LoadOrCreateCA(dir, "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Ensure(dir, "leaf", spec); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureKey(dir, "sa"); err != nil {
		t.Fatal(err)
	}
	for name, data := range f {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != string(data) {
			t.Errorf("%s on disk changed (%v)", name, err)
		}
	}

	spec.DNSNames = []string{"vc.example.com"}
	moved := maps.Clone(f)
	build(t, moved)
	for name := range f {
		if changed, leaf := string(moved[name]) != string(f[name]), name == "leaf.crt" || name == "leaf.key"; changed != leaf {
			t.Errorf("after a new name, %s changed = %v, want %v", name, changed, leaf)
		}
	}
	if err := certOf(moved, "leaf").CheckSignatureFrom(certOf(f, "ca")); err != nil {
		t.Errorf("the reissued leaf: %v", err)
	}
}
