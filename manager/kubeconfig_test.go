package manager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/vnest-dev/vnest/api/v1alpha1"
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

// TestKubeconfigNamesDistinct: kubeconfigs of distinct VirtualClusters merge
// (KUBECONFIG=a:b, as kubectl does) without one hiding the other: clientcmd
// keeps the first file's cluster, user and context of a name, so two that
// shared one would reach one tenant under both.
func TestKubeconfigNamesDistinct(t *testing.T) {
	in := func(namespace, name string) *v1alpha1.VirtualCluster {
		vc := makeVC(name).Obj()
		vc.Namespace = namespace
		return vc
	}
	// The same name in two namespaces; a dash moved between namespace and name.
	vcs := []*v1alpha1.VirtualCluster{in("team-a", "dev"), in("team-b", "dev"), in("team", "b-dev")}
	dir := t.TempDir()
	var files []string
	for i, vc := range vcs {
		server := fmt.Sprintf("https://192.0.2.%d:6443", i+1)
		b, err := kubeconfigFor(kubeconfigName(vc), server, adminCredentials{})
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, fmt.Sprintf("%d.kubeconfig", i))
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	merged, err := (&clientcmd.ClientConfigLoadingRules{Precedence: files}).Load()
	if err != nil {
		t.Fatal(err)
	}
	for i, vc := range vcs {
		name := kubeconfigName(vc)
		want := fmt.Sprintf("https://192.0.2.%d:6443", i+1)
		ctx := merged.Contexts[name]
		if ctx == nil || merged.Clusters[ctx.Cluster] == nil || merged.Clusters[ctx.Cluster].Server != want {
			t.Errorf("VirtualCluster %s/%s: context %q of the merged kubeconfigs does not reach its server %s", vc.Namespace, vc.Name, name, want)
		}
	}
}
