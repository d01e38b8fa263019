package manager

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
)

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBuildTenantPKI(t *testing.T) {
	etcdCA := newTestCA(t, "root")
	signer, err := newSigningCA(etcdCA.caCert, etcdCA.caKey)
	if err != nil {
		t.Fatal(err)
	}
	etcd := &etcdCreds{CA: etcdCA.caCert, Cert: etcdCA.cert, Key: etcdCA.key, Signer: signer}
	vc := makeVC("demo").Expose(v1alpha1.ExposeClusterIP, "vc.example.com", "203.0.113.7").Obj()
	names := layout.ServingNames{IPs: []net.IP{net.ParseIP("192.0.2.10")}, DNSNames: []string{"demo-apiserver.default.svc"}}
	req := pkiRequest{Serving: servingSpec(vc, names), EtcdUser: "vnest-tenant-demo-1", Etcd: etcd}

	first, err := buildTenantPKI(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := missingKeys(first); diff != nil {
		t.Fatalf("PKI lacks %v", diff)
	}
	serving := parseCert(t, first["apiserver.crt"])
	for _, dns := range []string{"localhost", "kubernetes.default.svc.cluster.local", "demo-apiserver.default.svc", "vc.example.com"} {
		if !slices.Contains(serving.DNSNames, dns) {
			t.Errorf("serving certificate lacks DNS name %s: %v", dns, serving.DNSNames)
		}
	}
	for _, ip := range []string{"127.0.0.1", "10.32.0.1", "192.0.2.10", "203.0.113.7"} {
		if !slices.ContainsFunc(serving.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("serving certificate lacks IP %s: %v", ip, serving.IPAddresses)
		}
	}
	etcdClient := parseCert(t, first[EtcdClientCertFile])
	if etcdClient.Subject.CommonName != "vnest-tenant-demo-1" || etcdClient.CheckSignatureFrom(signer.Cert) != nil {
		t.Errorf("etcd client certificate: CN %q, want vnest-tenant-demo-1 signed by the etcd CA", etcdClient.Subject.CommonName)
	}
	if string(first[EtcdCAFile]) != string(etcdCA.caCert) {
		t.Error("etcd-ca.crt is not the storage's CA bundle")
	}

	// A second run (a manager restart) changes nothing at all.
	again, err := buildTenantPKI(first, req)
	if err != nil {
		t.Fatal(err)
	}
	if !sameData(first, again) {
		t.Error("the PKI changed on a second run with the same request")
	}

	// A new SAN reissues the serving certificate only, by the same CA.
	req.Serving = servingSpec(vc, layout.ServingNames{IPs: []net.IP{net.ParseIP("192.0.2.11")}})
	moved, err := buildTenantPKI(first, req)
	if err != nil {
		t.Fatal(err)
	}
	for name := range first {
		changed := string(first[name]) != string(moved[name])
		if wantChange := strings.HasPrefix(name, layout.ServingCertName+"."); changed != wantChange {
			t.Errorf("%s changed = %v, want %v", name, changed, wantChange)
		}
	}
	if parseCert(t, moved["apiserver.crt"]).CheckSignatureFrom(parseCert(t, first["ca.crt"])) != nil {
		t.Error("the reissued serving certificate is not signed by the tenant CA")
	}
}

// TestBuildTenantPKIOffDisk: the PKI is built without a temporary directory, so a crash half
// way leaves no tenant CA key behind in it: with $TMPDIR a directory that does not exist, where
// nothing can be written, the PKI is built all the same.
func TestBuildTenantPKIOffDisk(t *testing.T) {
	etcdCA := newTestCA(t, "root")
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "absent"))
	data, err := buildTenantPKI(nil, pkiRequest{EtcdUser: "u", Etcd: &etcdCreds{CA: etcdCA.caCert, Cert: etcdCA.cert, Key: etcdCA.key}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := missingKeys(data); diff != nil {
		t.Errorf("PKI lacks %v", diff)
	}
}

func TestBuildTenantPKISharedEtcdCert(t *testing.T) {
	etcdCA := newTestCA(t, "root")
	data, err := buildTenantPKI(nil, pkiRequest{EtcdUser: "u", Etcd: &etcdCreds{CA: etcdCA.caCert, Cert: etcdCA.cert, Key: etcdCA.key}})
	if err != nil {
		t.Fatal(err)
	}
	if string(data[EtcdClientCertFile]) != string(etcdCA.cert) || string(data[EtcdClientKeyFile]) != string(etcdCA.key) {
		t.Error("without a CA key the tenant must get the storage's own client pair (etcd auth off)")
	}
	plain, err := buildTenantPKI(nil, pkiRequest{EtcdUser: "u", Etcd: &etcdCreds{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{EtcdCAFile, EtcdClientCertFile, EtcdClientKeyFile} {
		if _, ok := plain[k]; ok {
			t.Errorf("plain-http storage: %s present", k)
		}
	}
}

func TestBuildTenantPKIRefusesHalfACA(t *testing.T) {
	data, err := buildTenantPKI(nil, pkiRequest{EtcdUser: "u", Etcd: &etcdCreds{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, missing := range []string{"ca.key", "front-proxy-ca.crt", "csr-signer-ca.key", "sa.pub"} {
		t.Run(missing, func(t *testing.T) {
			broken := map[string][]byte{}
			for k, v := range data {
				if k != missing {
					broken[k] = v
				}
			}
			_, err := buildTenantPKI(broken, pkiRequest{EtcdUser: "u", Etcd: &etcdCreds{}})
			pe, ok := err.(*phaseError)
			if !ok || pe.reason != v1alpha1.ReasonPKIFailed || !strings.Contains(pe.message, "without "+missing) {
				t.Fatalf("error = %v, want PKIFailed naming %s", err, missing)
			}
		})
	}
}

// missingKeys lists the PKI files a control plane needs that data lacks.
func missingKeys(data map[string][]byte) []string {
	var missing []string
	for _, name := range pkiFileNames {
		if len(data[name]) == 0 {
			missing = append(missing, name)
		}
	}
	return missing
}

// TestBuildTenantPKIUpgrade: a PKI Secret from before a file of the layout gets it, and nothing
// else changes.
func TestBuildTenantPKIUpgrade(t *testing.T) {
	req := pkiRequest{EtcdUser: "u", Etcd: &etcdCreds{}}
	current, err := buildTenantPKI(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		name  string
		check func(t *testing.T, old, upgraded map[string][]byte)
	}{
		"kubelet client certificate, signed by the tenant CA": {
			name: layout.KubeletClientCertName,
			check: func(t *testing.T, old, upgraded map[string][]byte) {
				cert := parseCert(t, upgraded[layout.KubeletClientCertName+".crt"])
				if cert.Subject.CommonName != layout.KubeletClientUser || cert.CheckSignatureFrom(parseCert(t, old["ca.crt"])) != nil {
					t.Errorf("kubelet client certificate: CN %q, want %s signed by the tenant CA", cert.Subject.CommonName, layout.KubeletClientUser)
				}
			},
		},
		"CSR signer's CA, not the tenant CA": {
			name: layout.CSRSignerCAName,
			check: func(t *testing.T, old, upgraded map[string][]byte) {
				ca := parseCert(t, upgraded[layout.CSRSignerCAName+".crt"])
				if !ca.IsCA || ca.Subject.CommonName != layout.CSRSignerCACommonName || ca.Equal(parseCert(t, old["ca.crt"])) {
					t.Errorf("CSR signer CA: IsCA %v, CN %q; want a CA of its own named %s", ca.IsCA, ca.Subject.CommonName, layout.CSRSignerCACommonName)
				}
			},
		},
	}
	for desc, tc := range tests {
		t.Run(desc, func(t *testing.T) {
			old := map[string][]byte{}
			for k, v := range current {
				if !strings.HasPrefix(k, tc.name+".") {
					old[k] = v
				}
			}
			upgraded, err := buildTenantPKI(old, req)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range old {
				if string(upgraded[k]) != string(v) {
					t.Errorf("%s changed while adding %s", k, tc.name)
				}
			}
			if len(upgraded[tc.name+".key"]) == 0 {
				t.Errorf("no %s.key", tc.name)
			}
			tc.check(t, old, upgraded)
		})
	}
}
