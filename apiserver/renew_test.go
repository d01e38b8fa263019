package apiserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2/ktesting"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/pki"
)

// aYear is how long a renewed leaf has left, give or take the test's duration.
const aYear = 364 * 24 * time.Hour

func TestRenewPKI(t *testing.T) {
	tests := map[string]struct {
		pkiDir      func(state string) string // --pki-dir; nil: none
		wantOwns    bool
		wantRenewed []string
	}{
		"PKI in the state directory": {wantOwns: true, wantRenewed: []string{layout.ServingCertName, layout.AdminCertName}},
		"--pki-dir is the state directory": {pkiDir: func(state string) string { return state }, wantOwns: true,
			wantRenewed: []string{layout.ServingCertName, layout.AdminCertName}},
		// The manager's: it renews them in the tenant's Secret and writes them into pki/.
		"--pki-dir elsewhere": {pkiDir: func(state string) string { return filepath.Join(state, "pki") }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			o := NewOptions()
			o.StateDir, o.EtcdPrefix = state, "/vnest/tenants/x"
			if tc.pkiDir != nil {
				o.PKIDir = tc.pkiDir(state)
			}
			c, err := o.Complete()
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ownsPKI(); got != tc.wantOwns {
				t.Fatalf("ownsPKI = %v, want %v", got, tc.wantOwns)
			}
			if !c.ownsPKI() {
				return // Run neither renews at start nor starts the loop
			}
			expireSoon(t, c.pkiDir, layout.CAName, layout.ServingCertName)
			expireSoon(t, c.pkiDir, layout.CAName, layout.AdminCertName)
			if err := c.writeKubeconfig(layout.AdminKubeconfigFile, c.kubeconfigServer, c.pki.Admin, false); err != nil {
				t.Fatal(err)
			}
			before := readCerts(t, c.pki)

			c.renewPKI(ktesting.NewLogger(t, ktesting.DefaultConfig), true)

			after := readCerts(t, c.pki)
			var renewed []string
			for _, name := range slices.Sorted(maps.Keys(after)) {
				if !after[name].Equal(before[name]) {
					renewed = append(renewed, name)
					if left := time.Until(after[name].NotAfter); left < aYear {
						t.Errorf("%s renewed for %s, want a year", name, left.Round(time.Hour))
					}
				}
			}
			want := slices.Sorted(slices.Values(tc.wantRenewed))
			if !slices.Equal(renewed, want) {
				t.Fatalf("renewed %v, want %v (the leaves that expired within 30 days)", renewed, want)
			}
			kubeconfigCert := adminKubeconfigCert(t, state)
			if !kubeconfigCert.Equal(after[layout.AdminCertName]) {
				t.Errorf("admin.kubeconfig embeds the certificate valid until %s, want the renewed one (until %s)",
					kubeconfigCert.NotAfter, after[layout.AdminCertName].NotAfter)
			}
		})
	}
}

// expireSoon signs the certificate name in dir again with its key, by the CA caName, valid for a
// day more: within the 30 days before expiry in which a leaf is renewed.
func expireSoon(t testing.TB, dir, caName, name string) {
	t.Helper()
	ca, err := pki.LoadCA(dir, caName)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	cert.NotAfter = time.Now().Add(24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, cert, ca.Cert, cert.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readCerts are the leaf certificates of files by their base names.
func readCerts(t testing.TB, files layout.PKIFiles) map[string]*x509.Certificate {
	t.Helper()
	certs := map[string]*x509.Certificate{}
	for name, p := range map[string]pki.Pair{
		layout.ServingCertName: files.Serving, layout.AdminCertName: files.Admin,
		layout.ControllerManagerCertName: files.ControllerManager, layout.FrontProxyClientCertName: files.FrontProxyClient,
		layout.KubeletClientCertName: files.KubeletClient,
	} {
		certs[name] = readCertFile(t, p.CertFile)
	}
	return certs
}

func readCertFile(t testing.TB, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return parseCertPEM(t, data)
}

func parseCertPEM(t testing.TB, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// adminKubeconfigCert is the client certificate admin.kubeconfig in state embeds.
func adminKubeconfigCert(t testing.TB, state string) *x509.Certificate {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, layout.AdminKubeconfigFile))
	if err != nil {
		t.Fatal(err)
	}
	return parseCertPEM(t, cfg.CertData)
}

// servedCert is the certificate the apiserver at cfg's host presents.
func servedCert(ctx context.Context, host string) (*x509.Certificate, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // only reads the certificate
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(host, "https://"))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

func TestRenewsCertificatesWhileRunning(t *testing.T) {
	renewInterval = 200 * time.Millisecond
	t.Cleanup(func() { renewInterval = 12 * time.Hour })
	etcd := startEtcd(t)
	state := t.TempDir()
	tn := startTenant(t, tenantArgs(t, etcd, state, "/vnest/tenants/renew"))
	files := layout.PKIFilesIn(state)

	// The controllers' kubeconfig names the certificate's files, which client-go reads again
	// as it runs; embedded, they would keep the old one until a restart.
	cm, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, layout.ControllerManagerKubeconfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if cm.CertFile != files.ControllerManager.CertFile || cm.KeyFile != files.ControllerManager.KeyFile || len(cm.CertData) > 0 {
		t.Errorf("controller-manager.kubeconfig: certificate %q, key %q, %d bytes embedded; want %s and %s, nothing embedded",
			cm.CertFile, cm.KeyFile, len(cm.CertData), files.ControllerManager.CertFile, files.ControllerManager.KeyFile)
	}

	expireSoon(t, state, layout.CAName, layout.ServingCertName)
	expireSoon(t, state, layout.CAName, layout.AdminCertName)
	eventually(t, "the serving certificate renewed and served", time.Minute, func(ctx context.Context) (bool, error) {
		onDisk := readCertFile(t, files.Serving.CertFile)
		if time.Until(onDisk.NotAfter) < aYear {
			return false, nil
		}
		served, err := servedCert(ctx, tn.admin.Host)
		return err == nil && served.Equal(onDisk), err
	})
	eventually(t, "admin.kubeconfig with the renewed admin certificate", time.Minute, func(context.Context) (bool, error) {
		return adminKubeconfigCert(t, state).Equal(readCertFile(t, files.Admin.CertFile)) &&
			time.Until(adminKubeconfigCert(t, state).NotAfter) > aYear, nil
	})
	admin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, layout.AdminKubeconfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clientFor(t, admin).CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("the renewed admin.kubeconfig: %v", err)
	}
}

func TestRenewsCertificatesAtStart(t *testing.T) {
	etcd := startEtcd(t)
	state := t.TempDir()
	args := tenantArgs(t, etcd, state, "/vnest/tenants/restart")
	// A tenant stopped for a while: its controllers' and front proxy's certificates expire
	// within 30 days when it starts again, before the first round of renewal (renewInterval).
	o := NewOptions()
	o.StateDir, o.EtcdPrefix = state, "/vnest/tenants/restart"
	if _, err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	expireSoon(t, state, layout.CAName, layout.ControllerManagerCertName)
	expireSoon(t, state, layout.FrontProxyCAName, layout.FrontProxyClientCertName)
	startTenant(t, args)
	for name, file := range map[string]string{
		layout.ControllerManagerCertName: layout.PKIFilesIn(state).ControllerManager.CertFile,
		layout.FrontProxyClientCertName:  layout.PKIFilesIn(state).FrontProxyClient.CertFile,
	} {
		if left := time.Until(readCertFile(t, file).NotAfter); left < aYear {
			t.Errorf("%s once ready: valid for %s more, want a year", name, left.Round(time.Hour))
		}
	}
}
