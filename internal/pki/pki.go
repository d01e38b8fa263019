package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how close to expiry a certificate is reissued on load.
	renewBefore = 30 * 24 * time.Hour
)

// Authority is a certificate authority whose key is kept on disk.
type Authority struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	CertFile string
	KeyFile  string
}

// CertPEM returns the authority's certificate in PEM form.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

// Spec says what a leaf certificate must contain.
type Spec struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Server       bool // usable as a TLS serving certificate
	Client       bool // usable as a TLS client certificate
}

// Pair is a certificate and its key on disk.
type Pair struct {
	CertFile string
	KeyFile  string
}

// LoadOrCreateCA returns the CA stored as dir/name.{crt,key}, creating it with
// the given common name when it does not exist yet.
func LoadOrCreateCA(dir, name, commonName string) (*Authority, error) {
	return loadOrCreateCA(disk{}, dir, name, commonName)
}

func loadOrCreateCA(s store, dir, name, commonName string) (*Authority, error) {
	a := &Authority{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	cert, key, err := loadPair(s, a.CertFile, a.KeyFile)
	if err == nil && cert.IsCA && time.Until(cert.NotAfter) > renewBefore {
		a.Cert, a.Key = cert, key
		return a, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("loading CA %s: %w", name, err)
	}
	key, err = newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA %s: %w", name, err)
	}
	if err := writePair(s, a.CertFile, a.KeyFile, der, key); err != nil {
		return nil, err
	}
	a.Cert, _ = x509.ParseCertificate(der)
	a.Key = key
	return a, nil
}

// LoadCA returns the CA stored as dir/name.{crt,key} as it is, however close to
// its expiry: for files someone else owns, which LoadOrCreateCA would replace
// with a new CA (and key) 30 days before the end. A certificate that is no CA,
// or a key that is not the certificate's, is an error.
func LoadCA(dir, name string) (*Authority, error) {
	a := &Authority{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	cert, key, err := loadPair(disk{}, a.CertFile, a.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading CA %s: %w", name, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("loading CA %s: %s is not a CA certificate", name, a.CertFile)
	}
	a.Cert, a.Key = cert, key
	return a, nil
}

// Ensure returns the certificate dir/name.{crt,key} signed by a, issuing it
// when it is missing, signed by another CA, close to expiry, or different
// from spec.
func (a *Authority) Ensure(dir, name string, spec Spec) (Pair, error) {
	return a.ensure(disk{}, dir, name, spec)
}

func (a *Authority) ensure(s store, dir, name string, spec Spec) (Pair, error) {
	p := Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	cert, _, err := loadPair(s, p.CertFile, p.KeyFile)
	if err == nil && a.matches(cert, spec) {
		return p, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Pair{}, fmt.Errorf("loading certificate %s: %w", name, err)
	}
	return p, a.issue(s, p, name, spec, leafValidity)
}

// Renew reissues the certificate dir/name.{crt,key} when it expires within 30 days (or has
// expired): with a new key, valid for a year but never past a's own end (issue), and the
// subject, names, addresses and usages of the certificate it replaces, whatever asked for those.
// It reports whether it did. Only for files the caller owns; a certificate a did not sign is an
// error, being no one's to renew here.
//
// When a itself expires within 30 days no renewal keeps the certificate valid for long, and
// Renew returns an error that says so, whether it renewed or not: it renews a certificate that
// ends before a does (up to a's end), and leaves one that already ends with a as it is, since a
// new key would buy nothing. Only a new CA helps then, which is its owner's to make.
func (a *Authority) Renew(dir, name string) (bool, error) {
	p := Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	cert, _, err := loadPair(disk{}, p.CertFile, p.KeyFile)
	if err != nil {
		return false, fmt.Errorf("renewing certificate %s: %w", name, err)
	}
	if err := cert.CheckSignatureFrom(a.Cert); err != nil {
		return false, fmt.Errorf("renewing certificate %s: not signed by %s: %w", name, a.CertFile, err)
	}
	if time.Until(cert.NotAfter) > renewBefore {
		return false, nil
	}
	var caEnding error
	if time.Until(a.Cert.NotAfter) <= renewBefore {
		caEnding = fmt.Errorf("renewing certificate %s: its CA %s expires at %s, within 30 days, and no certificate it signs can outlive it: replace the CA",
			name, a.CertFile, a.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !cert.NotAfter.Before(a.Cert.NotAfter) {
		return false, caEnding // it ends with a already, within 30 days: caEnding is set
	}
	spec := Spec{
		CommonName: cert.Subject.CommonName, Organization: cert.Subject.Organization,
		DNSNames: cert.DNSNames, IPs: cert.IPAddresses,
		Server: slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth),
		Client: slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth),
	}
	if err := a.issue(disk{}, p, name, spec, leafValidity); err != nil {
		return false, err
	}
	return true, caEnding
}

// issue writes a new key and a certificate for spec signed by a into p, valid for validity but
// never past a's own end: no client verifies a certificate beyond its CA's NotAfter, so a longer
// validity would only claim that the certificate lasts longer than it does, to whoever watches
// its end. An expired a is an error rather than a certificate that ends before it begins.
func (a *Authority) issue(s store, p Pair, name string, spec Spec, validity time.Duration) error {
	now := time.Now()
	if !a.Cert.NotAfter.After(now) {
		return fmt.Errorf("issuing certificate %s: its CA %q expired at %s", name, a.Cert.Subject.CommonName, a.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	notAfter := now.Add(validity)
	if a.Cert.NotAfter.Before(notAfter) {
		notAfter = a.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: spec.CommonName, Organization: spec.Organization},
		DNSNames:     spec.DNSNames,
		IPAddresses:  spec.IPs,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  extUsages(spec),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return fmt.Errorf("issuing certificate %s: %w", name, err)
	}
	return writePair(s, p.CertFile, p.KeyFile, der, key)
}

// EnsureKey returns a private key dir/name.key and its public key
// dir/name.pub, creating them when missing (used for service-account tokens).
func EnsureKey(dir, name string) (privFile, pubFile string, err error) {
	return ensureKey(disk{}, dir, name)
}

func ensureKey(s store, dir, name string) (privFile, pubFile string, err error) {
	privFile, pubFile = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	s.complete(pubFile, privFile)
	if _, err := readKey(s, privFile); err == nil {
		if _, err := s.read(pubFile); err == nil {
			return privFile, pubFile, nil
		}
	}
	key, err := newKey()
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	return privFile, pubFile, s.writeKeyAnd(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644, privFile, key)
}

// matches reports whether cert, present, is what spec asks a for. One close to expiry is not,
// unless it ends with a already: a new one would end no later (issue), and reissuing it at each
// Ensure in a's last 30 days would only change the PKI again and again, and with it whatever a
// change of the PKI restarts. Nothing matches once a has expired, so that Ensure fails with
// issue's error instead of handing out a certificate no client verifies.
func (a *Authority) matches(cert *x509.Certificate, spec Spec) bool {
	if cert.CheckSignatureFrom(a.Cert) != nil {
		return false
	}
	now := time.Now()
	if !now.Before(a.Cert.NotAfter) {
		return false // nothing an expired CA signed verifies; issue says why
	}
	if cert.NotAfter.Sub(now) <= renewBefore && cert.NotAfter.Before(a.Cert.NotAfter) {
		return false
	}
	if cert.Subject.CommonName != spec.CommonName || !sameStrings(cert.Subject.Organization, spec.Organization) {
		return false
	}
	if !sameStrings(cert.DNSNames, spec.DNSNames) || !slices.EqualFunc(cert.IPAddresses, spec.IPs, net.IP.Equal) {
		return false
	}
	return slices.Equal(cert.ExtKeyUsage, extUsages(spec))
}

func extUsages(spec Spec) []x509.ExtKeyUsage {
	var u []x509.ExtKeyUsage
	if spec.Server {
		u = append(u, x509.ExtKeyUsageServerAuth)
	}
	if spec.Client {
		u = append(u, x509.ExtKeyUsageClientAuth)
	}
	return u
}

func sameStrings(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b))
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func loadPair(s store, certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	s.complete(certFile, keyFile)
	data, err := s.read(certFile)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	key, err := readKey(s, keyFile)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not match %s", keyFile, certFile)
	}
	return cert, key, nil
}

func readKey(s store, file string) (crypto.Signer, error) {
	data, err := s.read(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key", file)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", file)
	}
	return signer, nil
}

func writePair(s store, certFile, keyFile string, der []byte, key crypto.Signer) error {
	return s.writeKeyAnd(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644, keyFile, key)
}

// crashAfterKey, when set (by tests), ends writeKeyAnd after the key is in place, as a crash
// there would.
var crashAfterKey func() error

// writeKeyAnd writes key to keyFile and data, which goes with it (its certificate or public key),
// to file. No two renames are atomic together, so a crash may come between them: data is
// written aside first (file.tmp, synced before the key is renamed: writeAside) and renamed last,
// and CompletePair, on the next load, renames it when keyFile already holds the new key. A crash
// before the key's rename leaves the old pair as it was.
func writeKeyAnd(file string, data []byte, mode os.FileMode, keyFile string, key crypto.Signer) error {
	tmp, err := writeAside(file, data, mode)
	if err != nil {
		return err
	}
	if err := writeKey(keyFile, key); err != nil {
		return err
	}
	if crashAfterKey != nil {
		if err := crashAfterKey(); err != nil {
			return err
		}
	}
	return renameSynced(tmp, file) // a failure leaves tmp to CompletePair
}

// CompletePair finishes a write of the key keyFile and its certificate or public key file that
// a crash stopped after the key (see writeKeyAnd): when file.tmp holds the public key of the key
// in keyFile, it becomes file. Anything else is left as it is.
func CompletePair(file, keyFile string) {
	tmp := file + ".tmp"
	data, err := os.ReadFile(tmp)
	if err != nil {
		return
	}
	key, err := readKey(disk{}, keyFile)
	if err != nil {
		return
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if ok && pub.Equal(publicKeyOf(data)) {
		_ = os.Rename(tmp, file)
	}
}

// publicKeyOf is the public key in PEM data: a certificate's, or a PUBLIC KEY; nil if none.
func publicKeyOf(data []byte) crypto.PublicKey {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	switch block.Type {
	case "CERTIFICATE":
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			return cert.PublicKey
		}
	case "PUBLIC KEY":
		if pub, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
			return pub
		}
	}
	return nil
}

func writeKey(file string, key crypto.Signer) error {
	data, err := keyPEM(key)
	if err != nil {
		return err
	}
	return writeFile(file, data, 0o600)
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
