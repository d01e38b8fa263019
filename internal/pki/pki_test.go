package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

	// By path: client-go reads the files again as it runs (ReloadTLSFiles), so a renewed
	// certificate is taken up.
	if err := WriteKubeconfig(file, Kubeconfig{Name: "super", Server: "https://127.0.0.1:6443", CA: ca.CertPEM(), Client: admin, ClientByPath: true}); err != nil {
		t.Fatal(err)
	}
	if cfg, err = clientcmd.BuildConfigFromFlags("", file); err != nil {
		t.Fatal(err)
	}
	if cfg.CertFile != admin.CertFile || cfg.KeyFile != admin.KeyFile || len(cfg.CertData)+len(cfg.KeyData) > 0 {
		t.Fatalf("ClientByPath: certificate %q, key %q, %d bytes embedded; want %s, %s and none",
			cfg.CertFile, cfg.KeyFile, len(cfg.CertData)+len(cfg.KeyData), admin.CertFile, admin.KeyFile)
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
		key, err := readKey(disk{}, priv)
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

// traceSyncs replaces fsync for the test with one that records each call, as "<what is synced>:
// <the names in its directory then>" ("dir" for the directory; "(empty)" after a file with
// nothing in it), and then fails with fail's error, if fail is set.
func traceSyncs(t *testing.T, fail func(synced string) error) *[]string {
	var trace []string
	fsync = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		what, dir := filepath.Base(f.Name()), filepath.Dir(f.Name())
		switch {
		case fi.IsDir():
			what, dir = "dir", f.Name()
		case fi.Size() == 0:
			what += " (empty)"
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		trace = append(trace, what+": "+strings.Join(names, " "))
		if fail != nil {
			if err := fail(what); err != nil {
				return err
			}
		}
		return f.Sync()
	}
	t.Cleanup(func() { fsync = (*os.File).Sync })
	return &trace
}

// TestWritesAreDurable: a file is written aside and synced before it is renamed to its name, and
// the directory is synced after the rename, so that a power loss never leaves an empty or partial
// key or certificate under its name; a key's certificate (or public key) is synced aside before
// the key is renamed, so CompletePair finds it whole. The files have their data and mode, and no
// temporary file is left.
func TestWritesAreDurable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old       string // the file's content before, if any
		write     func(dir string) error
		wantTrace []string
		wantFiles map[string]os.FileMode
	}{
		{name: "a new file", write: func(dir string) error { return writeFile(filepath.Join(dir, "f"), []byte("new"), 0o600) },
			wantTrace: []string{"f.tmp: f.tmp", "dir: f"}, wantFiles: map[string]os.FileMode{"f": 0o600}},
		{name: "over an old file", old: "old", write: func(dir string) error { return writeFile(filepath.Join(dir, "f"), []byte("new"), 0o644) },
			wantTrace: []string{"f.tmp: f f.tmp", "dir: f"}, wantFiles: map[string]os.FileMode{"f": 0o644}},
		{name: "the same content: nothing written", old: "new", write: func(dir string) error { return writeFile(filepath.Join(dir, "f"), []byte("new"), 0o644) },
			wantFiles: map[string]os.FileMode{"f": 0o644}},
		{name: "a key and its public key", write: func(dir string) error { _, _, err := EnsureKey(dir, "sa"); return err },
			wantTrace: []string{"sa.pub.tmp: sa.pub.tmp", "sa.key.tmp: sa.key.tmp sa.pub.tmp", "dir: sa.key sa.pub.tmp", "dir: sa.key sa.pub"},
			wantFiles: map[string]os.FileMode{"sa.key": 0o600, "sa.pub": 0o644}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.old != "" {
				if err := os.WriteFile(filepath.Join(dir, "f"), []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			trace := traceSyncs(t, nil)
			if err := tc.write(dir); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantTrace, *trace); diff != "" {
				t.Errorf("syncs, with the directory's names at each (-want +got):\n%s", diff)
			}
			files := map[string]os.FileMode{}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				files[e.Name()] = fi.Mode()
			}
			if diff := cmp.Diff(tc.wantFiles, files); diff != "" {
				t.Errorf("files and modes (-want +got):\n%s", diff)
			}
			if data, err := os.ReadFile(filepath.Join(dir, "f")); err == nil && string(data) != "new" {
				t.Errorf("f holds %q, want %q", data, "new")
			}
		})
	}
}

// TestWriteFileErrors: a step of writeFile that fails ends it with an error naming the file, and
// leaves no temporary file; until the rename the file keeps its old content.
func TestWriteFileErrors(t *testing.T) {
	errSync := errors.New("input/output error")
	failOn := func(what string) func(string) error {
		return func(synced string) error {
			if synced == what {
				return errSync
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) (file string) // "f" in dir with "old" unless it says otherwise
		fail    func(synced string) error
		wantErr error
		want    string // the file's content after
	}{
		{name: "syncing the data fails", fail: failOn("f.tmp"), wantErr: errSync, want: "old"},
		{name: "syncing the directory fails", fail: failOn("dir"), wantErr: errSync, want: "new"},
		{name: "the rename fails (a directory has the name)", prepare: func(t *testing.T, dir string) string {
			if err := os.MkdirAll(filepath.Join(dir, "f", "x"), 0o700); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "f")
		}},
		{name: "the directory cannot be made (a file has its name)", prepare: func(t *testing.T, dir string) string {
			if err := os.WriteFile(filepath.Join(dir, "sub"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "sub", "f")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "f")
			if tc.prepare != nil {
				file = tc.prepare(t, dir)
			} else if err := os.WriteFile(file, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			traceSyncs(t, tc.fail)
			err := writeFile(file, []byte("new"), 0o600)
			if err == nil || !strings.Contains(err.Error(), "writing "+file+": ") || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("writeFile = %v, want an error writing %s (%v)", err, file, tc.wantErr)
			}
			if _, err := os.Lstat(file + ".tmp"); err == nil {
				t.Errorf("%s.tmp is left", file)
			}
			if tc.want != "" {
				if data, err := os.ReadFile(file); err != nil || string(data) != tc.want {
					t.Errorf("%s holds %q (%v), want %q", file, data, err, tc.want)
				}
			}
		})
	}
}

func TestRenew(t *testing.T) {
	spec := Spec{CommonName: "kube-apiserver", Organization: []string{"o"}, DNSNames: []string{"localhost", "kubernetes"},
		IPs: []net.IP{net.ParseIP("127.0.0.1").To4(), net.ParseIP("10.0.0.1").To4()}, Server: true, Client: true}
	day := 24 * time.Hour
	tests := map[string]struct {
		validity    time.Duration // of the certificate on disk
		caLeft      time.Duration // how long its CA has; 0: a new CA's 10 years
		otherCA     bool
		wantRenewed bool
		wantErr     string
	}{
		"a year left is kept":          {validity: leafValidity},
		"31 days left is kept":         {validity: 31 * day},
		"29 days left is renewed":      {validity: 29 * day, wantRenewed: true},
		"expired is renewed":           {validity: -time.Minute, wantRenewed: true},
		"another CA's is left, failed": {validity: 29 * day, otherCA: true, wantErr: "not signed by"},
		// No renewal outlives the CA: renewed up to its end, which is better than a day, but the
		// CA is what must change.
		"a day left, the CA 20 days: renewed, failed": {validity: day, caLeft: 20 * day, wantRenewed: true,
			wantErr: "expires at"},
		// Issued for 25 days and so ending with its CA: a new key would end no later.
		"ending with the CA in 20 days: kept, failed": {validity: 25 * day, caLeft: 20 * day, wantErr: "expires at"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ca, err := LoadOrCreateCA(dir, "ca", "test-ca")
			if err != nil {
				t.Fatal(err)
			}
			if tc.caLeft != 0 {
				ca = caUntil(t, dir, time.Now().Add(tc.caLeft))
			}
			issuer := ca
			if tc.otherCA {
				if issuer, err = LoadOrCreateCA(t.TempDir(), "ca", "other"); err != nil {
					t.Fatal(err)
				}
			}
			p := Pair{CertFile: filepath.Join(dir, "leaf.crt"), KeyFile: filepath.Join(dir, "leaf.key")}
			if err := issuer.issue(disk{}, p, "leaf", spec, tc.validity); err != nil {
				t.Fatal(err)
			}
			before := readLeaf(t, p)
			renewed, err := ca.Renew(dir, "leaf")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Renew error = %v, want one with %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if renewed != tc.wantRenewed {
				t.Fatalf("Renew = %v, want %v", renewed, tc.wantRenewed)
			}
			after := readLeaf(t, p)
			if !tc.wantRenewed {
				if !after.Equal(before) {
					t.Fatalf("the certificate was replaced; want it kept")
				}
				return
			}
			if after.Equal(before) || after.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(before.PublicKey) {
				t.Fatalf("renewed certificate has the old certificate or key")
			}
			if want := leafEnd(ca); after.NotAfter.Before(want.Add(-time.Minute)) || after.NotAfter.After(want) {
				t.Fatalf("renewed certificate ends at %s, want %s (a year, or its CA's end %s)", after.NotAfter, want, ca.Cert.NotAfter)
			}
			if err := after.CheckSignatureFrom(ca.Cert); err != nil {
				t.Fatalf("renewed certificate: %v", err)
			}
			type attrs struct {
				Subject  string
				DNSNames []string
				IPs      []string
				Usages   []x509.ExtKeyUsage
			}
			of := func(c *x509.Certificate) attrs {
				a := attrs{Subject: c.Subject.String(), DNSNames: c.DNSNames, Usages: c.ExtKeyUsage}
				for _, ip := range c.IPAddresses {
					a.IPs = append(a.IPs, ip.String())
				}
				return a
			}
			if diff := cmp.Diff(of(before), of(after)); diff != "" {
				t.Fatalf("renewed certificate's subject, names or usages (-old +new):\n%s", diff)
			}
		})
	}
}

// TestLeafEndsByItsCA: a leaf, first issued or renewed, is valid for a year but never past its
// CA's end, after which no client verifies it anyway.
func TestLeafEndsByItsCA(t *testing.T) {
	spec := Spec{CommonName: "admin", Organization: []string{"system:masters"}, Client: true}
	day := 24 * time.Hour
	tests := map[string]struct {
		caLeft    time.Duration
		wantCAEnd bool // else a year
	}{
		"CA for 10 years: a year":       {caLeft: caValidity},
		"CA for 6 months: the CA's end": {caLeft: 182 * day, wantCAEnd: true},
	}
	ways := map[string]func(ca *Authority, dir string) error{
		"issued": func(ca *Authority, dir string) error { _, err := ca.Ensure(dir, "leaf", spec); return err },
		"renewed": func(ca *Authority, dir string) error {
			// 29 days left: within the 30 days before its end in which a leaf is renewed.
			if err := ca.issue(disk{}, leafPair(dir), "leaf", spec, 29*day); err != nil {
				return err
			}
			if renewed, err := ca.Renew(dir, "leaf"); err != nil || !renewed {
				return fmt.Errorf("Renew = %v, %v; want true, nil", renewed, err)
			}
			return nil
		},
	}
	for name, tc := range tests {
		for how, makeLeaf := range ways {
			t.Run(name+", "+how, func(t *testing.T) {
				dir := t.TempDir()
				ca := caUntil(t, dir, time.Now().Add(tc.caLeft))
				if err := makeLeaf(ca, dir); err != nil {
					t.Fatal(err)
				}
				got := readLeaf(t, leafPair(dir)).NotAfter
				want := time.Now().Add(leafValidity)
				if tc.wantCAEnd {
					want = ca.Cert.NotAfter
				}
				if got.Before(want.Add(-time.Minute)) || got.After(want) {
					t.Errorf("the %s leaf ends at %s, want %s (its CA ends at %s)", how, got, want, ca.Cert.NotAfter)
				}
			})
		}
	}
}

// TestEnsureNearTheCAsEnd: a leaf Ensure issued up to a CA that ends within 30 days is kept by
// the next Ensure, being as good as a new one (the manager's PKI would otherwise change at every
// resync, and restart the tenant: its etcd client certificate is by an etcd CA it does not
// replace); with the CA expired, there is no certificate to issue, and the one it issued before
// is not kept.
func TestEnsureNearTheCAsEnd(t *testing.T) {
	spec := Spec{CommonName: "etcd-user", Client: true}
	day := 24 * time.Hour
	tests := map[string]struct {
		caLeft  time.Duration
		wantErr string
		// expire makes the CA end a day ago after the first Ensure, which the next must refuse.
		expire bool
	}{
		"CA for 20 days: until its end, then kept": {caLeft: 20 * day},
		"CA expired: failed":                       {caLeft: -day, wantErr: `its CA "test-ca" expired at`},
		"CA expired since: failed":                 {caLeft: 20 * day, expire: true, wantErr: `its CA "test-ca" expired at`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ca := caUntil(t, dir, time.Now().Add(tc.caLeft))
			_, err := ca.Ensure(dir, "leaf", spec)
			if tc.expire {
				if err != nil {
					t.Fatal(err)
				}
				ca = resignedCA(t, ca, time.Now().Add(-day))
				_, err = ca.Ensure(dir, "leaf", spec)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Ensure error = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			first := readLeaf(t, leafPair(dir))
			if !first.NotAfter.Equal(ca.Cert.NotAfter) {
				t.Fatalf("the leaf ends at %s, want its CA's end %s", first.NotAfter, ca.Cert.NotAfter)
			}
			if _, err := ca.Ensure(dir, "leaf", spec); err != nil {
				t.Fatal(err)
			}
			if again := readLeaf(t, leafPair(dir)); !again.Equal(first) {
				t.Errorf("the next Ensure reissued the leaf that ends with its CA; want it kept")
			}
		})
	}
}

// caUntil is a CA in dir/ca.{crt,key} as LoadOrCreateCA makes it, but ending at notAfter.
func caUntil(t *testing.T, dir string, notAfter time.Time) *Authority {
	t.Helper()
	ca, err := LoadOrCreateCA(dir, "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	return resignedCA(t, ca, notAfter)
}

// resignedCA is ca signed again with its own key, ending at notAfter, in its files: what it
// signed still verifies.
func resignedCA(t *testing.T, ca *Authority, notAfter time.Time) *Authority {
	t.Helper()
	tmpl := *ca.Cert
	tmpl.NotAfter = notAfter
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, ca.Key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePair(disk{}, ca.CertFile, ca.KeyFile, der, ca.Key); err != nil {
		t.Fatal(err)
	}
	if ca.Cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return ca
}

// leafEnd is when a leaf ca issues now ends: in a year, or with ca if that comes first.
func leafEnd(ca *Authority) time.Time {
	if end := time.Now().Add(leafValidity); end.Before(ca.Cert.NotAfter) {
		return end
	}
	return ca.Cert.NotAfter
}

func leafPair(dir string) Pair {
	return Pair{CertFile: filepath.Join(dir, "leaf.crt"), KeyFile: filepath.Join(dir, "leaf.key")}
}

// readLeaf loads p as a TLS key pair (so the key matches) and returns its certificate.
func readLeaf(t *testing.T, p Pair) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
