package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestEnsureReusesOrReissues(t *testing.T) {
	base := Spec{CommonName: "kube-apiserver", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}
	tests := map[string]struct {
		change    func(Spec) Spec
		otherCA   bool
		wantReuse bool
	}{
		"same spec is reused":         {change: func(s Spec) Spec { return s }, wantReuse: true},
		"new SAN is reissued":         {change: func(s Spec) Spec { s.IPs = append(s.IPs, net.ParseIP("10.0.0.1")); return s }},
		"new organization reissued":   {change: func(s Spec) Spec { s.Organization = []string{"system:masters"}; return s }},
		"client usage added reissued": {change: func(s Spec) Spec { s.Client = true; return s }},
		"other CA is reissued":        {change: func(s Spec) Spec { return s }, otherCA: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ca, err := LoadOrCreateCA(dir, "ca", "test-ca")
			if err != nil {
				t.Fatal(err)
			}
			p, err := ca.Ensure(dir, "leaf", base)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(p.CertFile)
			if tc.otherCA {
				if ca, err = LoadOrCreateCA(t.TempDir(), "ca", "other"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ca.Ensure(dir, "leaf", tc.change(base)); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(p.CertFile)
			if reused := string(before) == string(after); reused != tc.wantReuse {
				t.Fatalf("reused = %v, want %v", reused, tc.wantReuse)
			}
			pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := x509.ParseCertificate(pair.Certificate[0])
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
				t.Fatalf("certificate does not verify against its CA: %v", err)
			}
		})
	}
}

func TestCAIsStable(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateCA(dir, "ca", "x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateCA(dir, "ca", "x")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Cert.Equal(b.Cert) {
		t.Fatal("CA was recreated although it was valid")
	}
}

func TestKubeconfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca, _ := LoadOrCreateCA(dir, "ca", "x")
	admin, err := ca.Ensure(dir, "admin", Spec{CommonName: "admin", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	file := dir + "/admin.kubeconfig"
	if err := WriteKubeconfig(file, Kubeconfig{Name: "super", Server: "https://127.0.0.1:6443", CA: ca.CertPEM(), Client: admin}); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || len(cfg.CertData) == 0 || len(cfg.CAData) == 0 {
		t.Fatalf("unexpected rest config: host=%q cert=%d ca=%d", cfg.Host, len(cfg.CertData), len(cfg.CAData))
	}
}

func TestEnsureKeyStable(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := EnsureKey(dir, "sa")
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := os.ReadFile(priv)
	if _, _, err := EnsureKey(dir, "sa"); err != nil {
		t.Fatal(err)
	}
	k2, _ := os.ReadFile(priv)
	if string(k1) != string(k2) {
		t.Fatal("key was regenerated")
	}
	if _, err := os.Stat(pub); err != nil {
		t.Fatal(err)
	}
}

// TestWriteInterruptedAfterKey: a process that dies while it writes a pair, after the new key and
// before its certificate (or public key), leaves a pair the next load finishes. The key used to be
// renamed in place first and the certificate written after it, so a crash there left the new key
// beside the old certificate, and every later load failed ("does not match") until someone
// removed the files.
func TestWriteInterruptedAfterKey(t *testing.T) {
	crash := errors.New("crashed")
	interrupted := func(t *testing.T, write func() error) {
		t.Helper()
		crashAfterKey = func() error { return crash }
		defer func() { crashAfterKey = nil }()
		if err := write(); !errors.Is(err, crash) {
			t.Fatalf("interrupted write: %v, want the crash", err)
		}
	}
	t.Run("leaf reissued", func(t *testing.T) {
		dir := t.TempDir()
		ca, err := LoadOrCreateCA(dir, "ca", "x")
		if err != nil {
			t.Fatal(err)
		}
		spec := Spec{CommonName: "kube-apiserver", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}
		if _, err := ca.Ensure(dir, "leaf", spec); err != nil {
			t.Fatal(err)
		}
		spec.IPs = append(spec.IPs, net.ParseIP("192.0.2.1")) // the host IP changed: a reissue
		interrupted(t, func() error { _, err := ca.Ensure(dir, "leaf", spec); return err })
		p, err := ca.Ensure(dir, "leaf", spec)
		if err != nil {
			t.Fatalf("Ensure after the interrupted reissue: %v", err)
		}
		if _, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("service-account key", func(t *testing.T) {
		dir := t.TempDir()
		if _, _, err := EnsureKey(dir, "sa"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "sa.key"), []byte("corrupt"), 0o600); err != nil {
			t.Fatal(err)
		}
		interrupted(t, func() error { _, _, err := EnsureKey(dir, "sa"); return err })
		priv, pub, err := EnsureKey(dir, "sa")
		if err != nil {
			t.Fatal(err)
		}
		key, err := readKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(pub)
		if err != nil {
			t.Fatal(err)
		}
		if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(publicKeyOf(data)) {
			t.Error("sa.pub is not the public key of sa.key: tokens signed with one do not verify with the other")
		}
	})
}
