package manager

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// Keys of an etcd credentials Secret (spec.storage.etcd.credentialsSecretRef).
const (
	EtcdCAKey       = "ca.crt"  // CA bundle that verifies the etcd servers
	EtcdCertKey     = "tls.crt" // client certificate allowed to manage users and roles (root when auth is on)
	EtcdKeyKey      = "tls.key"
	EtcdCAKeyKey    = "ca.key" // optional: key of the CA in ca.crt, to issue per-tenant client certificates
	EtcdUsernameKey = "username"
	EtcdPasswordKey = "password"
)

// etcdCreds are how the manager reaches an etcd with administrative rights,
// and what it hands on to the tenant.
type etcdCreds struct {
	Endpoints []string
	CA        []byte // PEM bundle that verifies the servers
	Cert, Key []byte // PEM client certificate and key of an admin (root when auth is on)
	// Signer issues per-tenant client certificates; nil when no CA key was given.
	Signer             *signingCA
	Username, Password string
	// Source says where the credentials came from, for messages.
	Source string
}

// signingCA is a CA certificate with its key.
type signingCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// tlsEnabled reports whether the endpoints use TLS.
func (c *etcdCreds) tlsEnabled() bool {
	return slices.ContainsFunc(c.Endpoints, func(e string) bool { return strings.HasPrefix(e, "https://") })
}

// tlsConfig is the client TLS configuration for the admin connection.
func (c *etcdCreds) tlsConfig() (*tls.Config, error) {
	if !c.tlsEnabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(c.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CA) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", c.Source, EtcdCAKey)
		}
		cfg.RootCAs = pool
	}
	if len(c.Cert) > 0 {
		pair, err := tls.X509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %s and %s do not form a key pair: %w", c.Source, EtcdCertKey, EtcdKeyKey, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// credsFromSecret reads the etcd credentials of spec.storage.etcd from
// secret (nil: it does not exist). Every problem is a CredentialsInvalid
// failure whose message names exactly what is missing or broken.
func credsFromSecret(storage *v1alpha1.EtcdStorage, namespace string, secret *corev1.Secret) (*etcdCreds, error) {
	ref := namespace + "/" + storage.CredentialsSecretRef.Name
	want := fmt.Sprintf("it must hold %s, %s and %s of an etcd user allowed to manage users and roles (root when etcd auth is on), and optionally %s to issue per-tenant client certificates",
		EtcdCAKey, EtcdCertKey, EtcdKeyKey, EtcdCAKeyKey)
	if secret == nil {
		return nil, failure(v1alpha1.ReasonCredentialsInvalid,
			"etcd credentials Secret %s (spec.storage.etcd.credentialsSecretRef) not found: create it; %s", ref, want)
	}
	c := &etcdCreds{
		Endpoints: storage.Endpoints,
		CA:        secret.Data[EtcdCAKey], Cert: secret.Data[EtcdCertKey], Key: secret.Data[EtcdKeyKey],
		Username: string(secret.Data[EtcdUsernameKey]), Password: string(secret.Data[EtcdPasswordKey]),
		Source: "etcd credentials Secret " + ref,
	}
	var missing []string
	if c.tlsEnabled() {
		for _, k := range []string{EtcdCAKey, EtcdCertKey, EtcdKeyKey} {
			if len(secret.Data[k]) == 0 {
				missing = append(missing, k)
			}
		}
	}
	if c.Username != "" && c.Password == "" {
		missing = append(missing, EtcdPasswordKey+" (username is set)")
	}
	if c.Username == "" && c.Password != "" {
		missing = append(missing, EtcdUsernameKey+" (password is set)")
	}
	if len(missing) > 0 {
		return nil, failure(v1alpha1.ReasonCredentialsInvalid, "etcd credentials Secret %s lacks %s: %s", ref, strings.Join(missing, ", "), want)
	}
	if caKey := secret.Data[EtcdCAKeyKey]; len(caKey) > 0 {
		signer, err := newSigningCA(c.CA, caKey)
		if err != nil {
			return nil, failure(v1alpha1.ReasonCredentialsInvalid, "etcd credentials Secret %s: %v", ref, err)
		}
		c.Signer = signer
	}
	if _, err := c.tlsConfig(); err != nil {
		return nil, failure(v1alpha1.ReasonCredentialsInvalid, "%v", err)
	}
	return c, nil
}

// validateEndpoints checks the endpoint URLs (the CRD checks the scheme;
// this catches the rest before a dial does, with a better message).
func validateEndpoints(endpoints []string) error {
	if len(endpoints) == 0 {
		return errors.New("no etcd endpoints")
	}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("invalid etcd endpoint %q: want http(s)://host:port", e)
		}
	}
	return nil
}

// newSigningCA pairs caKeyPEM with the certificate of bundlePEM it belongs to.
func newSigningCA(bundlePEM, caKeyPEM []byte) (*signingCA, error) {
	key, err := parsePrivateKey(caKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EtcdCAKeyKey, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type %T", EtcdCAKeyKey, key)
	}
	for rest := bundlePEM; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EtcdCAKey, err)
		}
		if cert.IsCA && pub.Equal(cert.PublicKey) {
			return &signingCA{Cert: cert, Key: key}, nil
		}
	}
	return nil, fmt.Errorf("%s does not belong to any CA certificate in %s", EtcdCAKeyKey, EtcdCAKey)
}

// parsePrivateKey accepts the PEM encodings etcd deployments use: PKCS#8,
// SEC 1 (EC) and PKCS#1 (RSA).
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}
