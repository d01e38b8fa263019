package manager

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vnest-dev/vnest/apiserver/layout"
)

// TestCheckReadyzWaitsForDefaultServiceAccount: a tenant whose /readyz
// answers but whose default ServiceAccount is not there yet is not ready
// (pods created then would be refused), and is once the account exists.
func TestCheckReadyzWaitsForDefaultServiceAccount(t *testing.T) {
	vc := makeVC("demo").Obj()
	names := layout.ServingNames{IPs: []net.IP{net.ParseIP("127.0.0.1")}}
	etcdCA := newTestCA(t, "root")
	signer, err := newSigningCA(etcdCA.caCert, etcdCA.caKey)
	if err != nil {
		t.Fatal(err)
	}
	etcd := &etcdCreds{CA: etcdCA.caCert, Cert: etcdCA.cert, Key: etcdCA.key, Signer: signer}
	data, err := buildTenantPKI(nil, pkiRequest{Serving: servingSpec(vc, names), EtcdUser: "vnest-tenant-demo-1", Etcd: etcd})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(data[layout.ServingCertName+".crt"], data[layout.ServingCertName+".key"])
	if err != nil {
		t.Fatal(err)
	}
	var saExists atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz":
			_, _ = w.Write([]byte("ok"))
		case r.URL.Path == "/api/v1/namespaces/default/serviceaccounts/default" && saExists.Load():
			_, _ = w.Write([]byte(`{"kind":"ServiceAccount"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	err = checkReadyz(context.Background(), srv.URL, adminFrom(data))
	if err == nil || !strings.Contains(err.Error(), "default ServiceAccount does not exist yet") {
		t.Fatalf("without the default ServiceAccount: err = %v, want it to say the account is missing", err)
	}
	saExists.Store(true)
	if err := checkReadyz(context.Background(), srv.URL, adminFrom(data)); err != nil {
		t.Fatalf("with the default ServiceAccount: %v", err)
	}
}
