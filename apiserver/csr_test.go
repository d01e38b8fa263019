package apiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/syncer/kubeletproxy"
)

// testCSRCannotMintKubeletClient: a tenant user who may create and approve a CSR of
// kubernetes.io/kube-apiserver-client gets a certificate that authenticates to the tenant
// apiserver (upstream's "building a client with a CSR"), but even with the kubelet client's name
// it does not get past the syncer's kubelet proxy, which the apiserver's own kubelet client
// certificate does: the CSR signer's CA is not the tenant CA.
func testCSRCannotMintKubeletClient(t *testing.T, tn *tenant) {
	ctx := t.Context()
	client := clientFor(t, tn.admin)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: layout.KubeletClientUser},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "mint-kubelet-client"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved by the test",
	})
	if _, err := client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var certPEM []byte
	eventually(t, "the CSR's certificate issued", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		certPEM = got.Status.Certificate
		return len(certPEM) > 0, nil
	})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	minted, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	// It authenticates to the tenant apiserver, as the name it asked for.
	cfg := rest.AnonymousClientConfig(tn.admin)
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	review, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the CSR's certificate against the tenant apiserver: %v", err)
	}
	if got := review.Status.UserInfo.Username; got != layout.KubeletClientUser {
		t.Errorf("the CSR's certificate authenticates as %q, want %q", got, layout.KubeletClientUser)
	}

	// The kubelet proxy knows the tenant by the CA of its kubeconfig, the tenant CA.
	url := startKubeletProxy(t, filepath.Join(tn.stateDir, layout.CAName+".crt"))
	own, err := tls.LoadX509KeyPair(filepath.Join(tn.stateDir, layout.KubeletClientCertName+".crt"), filepath.Join(tn.stateDir, layout.KubeletClientCertName+".key"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert     tls.Certificate
		wantCode int
		wantBody string
	}{
		"the apiserver's kubelet client certificate": {own, http.StatusOK, "a"},
		"a CSR's certificate of the same name":       {minted, http.StatusForbidden, ""},
	} {
		t.Run(name, func(t *testing.T) {
			httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				InsecureSkipVerify: true, // as kube-apiserver without --kubelet-certificate-authority
				Certificates:       []tls.Certificate{tc.cert},
			}}}
			resp, err := httpClient.Get(url + "/vnest/tenant")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || (tc.wantBody != "" && string(body) != tc.wantBody) {
				t.Errorf("kubelet proxy: HTTP %d %q, want %d %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

// startKubeletProxy serves the syncer's kubelet proxy for one tenant whose CA is in caFile,
// with a handler at /vnest/tenant that answers the identified tenant's cluster key.
func startKubeletProxy(t *testing.T, caFile string) string {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	ca := kubeletproxy.CAFromPEM(caPEM)
	if ca == nil {
		t.Fatalf("no certificate in %s", caFile)
	}
	tenants := []kubeletproxy.Tenant{{ClusterKey: "a", CA: ca}}
	proxy, err := kubeletproxy.New(kubeletproxy.Config{
		Tenants:      func() []kubeletproxy.Tenant { return tenants },
		SuperPods:    corelisters.NewPodLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})),
		Super:        &rest.Config{Host: "https://127.0.0.1:1"}, // never reached: no pod is proxied
		ServingHosts: []string{"127.0.0.1"},
		Handlers: map[string]kubeletproxy.TenantHandler{"/vnest/tenant": func(w http.ResponseWriter, _ *http.Request, t kubeletproxy.Tenant) {
			fmt.Fprint(w, t.ClusterKey)
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := proxy.Start(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return "https://" + addr.String()
}
