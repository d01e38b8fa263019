package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/pki"
)

// testCA is a CA and a client pair it issued, as PEM.
type testCA struct {
	caCert, caKey, cert, key []byte
}

func newTestCA(t *testing.T, clientCN string) testCA {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, "ca", "test-etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Ensure(dir, "client", pki.Spec{CommonName: clientCN, Client: true}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return testCA{read("ca.crt"), read("ca.key"), read("client.crt"), read("client.key")}
}

func TestCredsFromSecret(t *testing.T) {
	ca := newTestCA(t, "root")
	other := newTestCA(t, "root")
	storage := &v1alpha1.EtcdStorage{Endpoints: []string{"https://etcd:2379"}, CredentialsSecretRef: v1alpha1.SecretReference{Name: "etcd"}}
	plain := &v1alpha1.EtcdStorage{Endpoints: []string{"http://etcd:2379"}, CredentialsSecretRef: v1alpha1.SecretReference{Name: "etcd"}}
	secret := func(kv ...any) *corev1.Secret {
		s := &corev1.Secret{Data: map[string][]byte{}}
		for i := 0; i < len(kv); i += 2 {
			s.Data[kv[i].(string)] = kv[i+1].([]byte)
		}
		return s
	}
	full := secret(EtcdCAKey, ca.caCert, EtcdCertKey, ca.cert, EtcdKeyKey, ca.key)
	cases := map[string]struct {
		storage    *v1alpha1.EtcdStorage
		secret     *corev1.Secret
		wantErr    string // substring; "" = success
		wantSigner bool
	}{
		"missing Secret": {storage, nil, "etcd credentials Secret default/etcd (spec.storage.etcd.credentialsSecretRef) not found: create it; it must hold ca.crt, tls.crt and tls.key", false},
		"empty Secret":   {storage, secret(), "etcd credentials Secret default/etcd lacks ca.crt, tls.crt, tls.key:", false},
		"only a key":     {storage, secret(EtcdCAKey, ca.caCert, EtcdCertKey, ca.cert), "lacks tls.key:", false},
		"complete":       {storage, full, "", false},
		"with CA key":    {storage, secret(EtcdCAKey, ca.caCert, EtcdCertKey, ca.cert, EtcdKeyKey, ca.key, EtcdCAKeyKey, ca.caKey), "", true},
		"CA key of another CA": {storage, secret(EtcdCAKey, ca.caCert, EtcdCertKey, ca.cert, EtcdKeyKey, ca.key, EtcdCAKeyKey, other.caKey),
			"ca.key does not belong to any CA certificate in ca.crt", false},
		"mismatched pair":          {storage, secret(EtcdCAKey, ca.caCert, EtcdCertKey, ca.cert, EtcdKeyKey, other.key), "tls.crt and tls.key do not form a key pair", false},
		"garbage CA":               {storage, secret(EtcdCAKey, []byte("x"), EtcdCertKey, ca.cert, EtcdKeyKey, ca.key), "ca.crt holds no PEM certificate", false},
		"username without pass":    {storage, secret(EtcdCAKey, ca.caCert, EtcdCertKey, ca.cert, EtcdKeyKey, ca.key, EtcdUsernameKey, []byte("root")), "lacks password (username is set)", false},
		"plain http needs nothing": {plain, secret(), "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := credsFromSecret(tc.storage, "default", tc.secret)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if (c.Signer != nil) != tc.wantSigner {
					t.Errorf("signer = %v, want %v", c.Signer != nil, tc.wantSigner)
				}
				return
			}
			pe, ok := err.(*phaseError)
			if !ok || pe.reason != v1alpha1.ReasonCredentialsInvalid {
				t.Fatalf("error = %#v, want a CredentialsInvalid phaseError", err)
			}
			if !strings.Contains(pe.message, tc.wantErr) {
				t.Errorf("message %q does not contain %q", pe.message, tc.wantErr)
			}
		})
	}
}

func TestParsePrivateKeyEncodings(t *testing.T) {
	ca := newTestCA(t, "x")
	if _, err := parsePrivateKey(ca.caKey); err != nil {
		t.Errorf("PKCS#8: %v", err)
	}
	if _, err := parsePrivateKey([]byte("not pem")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestEtcdClientIssuable(t *testing.T) {
	ca := newTestCA(t, "root")
	signer, err := newSigningCA(ca.caCert, ca.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if why := etcdClientIssuable(&etcdCreds{Signer: signer}); why != "" {
		t.Errorf("with a signer: %q, want \"\"", why)
	}
	why := etcdClientIssuable(&etcdCreds{Source: "etcd credentials Secret default/etcd"})
	for _, want := range []string{"etcd auth is on", "default/etcd has no CA key", "add ca.key", "--etcd-ca-keyfile"} {
		if !strings.Contains(why, want) {
			t.Errorf("%q does not contain %q", why, want)
		}
	}
}
