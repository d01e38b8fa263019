package serviceipadmission

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	api "k8s.io/kubernetes/pkg/apis/core"

	"github.com/vnest-dev/vnest/internal/serviceip"
)

func service(ns, name string, mutate func(*api.Service)) *api.Service {
	svc := &api.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: api.ServiceSpec{Type: api.ServiceTypeClusterIP, Selector: map[string]string{"app": name},
			Ports: []api.ServicePort{{Name: "http", Protocol: api.ProtocolTCP, Port: 80}}},
	}
	if mutate != nil {
		mutate(svc)
	}
	return svc
}

func TestWantsAllocation(t *testing.T) {
	externalName := func(s *api.Service) { s.Spec.Type, s.Spec.ExternalName = api.ServiceTypeExternalName, "example.com" }
	withIP := func(s *api.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.9", []string{"10.96.0.9"} }
	cases := map[string]struct {
		svc, old *api.Service
		want     bool
	}{
		"create ClusterIP":                 {svc: service("default", "web", nil), want: true},
		"create NodePort":                  {svc: service("default", "web", func(s *api.Service) { s.Spec.Type = api.ServiceTypeNodePort }), want: true},
		"create with an IP the user chose": {svc: service("default", "web", withIP), want: true},
		"create headless":                  {svc: service("default", "web", func(s *api.Service) { s.Spec.ClusterIP = api.ClusterIPNone })},
		"create ExternalName":              {svc: service("default", "web", externalName)},
		"the tenant's kubernetes Service":  {svc: service("default", "kubernetes", withIP)},
		"kubernetes in another namespace":  {svc: service("team", "kubernetes", nil), want: true},
		"update keeping the IP":            {svc: service("default", "web", withIP), old: service("default", "web", withIP)},
		"update ExternalName to ClusterIP": {svc: service("default", "web", nil), old: service("default", "web", externalName), want: true},
		"update ExternalName, IP chosen":   {svc: service("default", "web", withIP), old: service("default", "web", externalName)},
		"update ClusterIP to ExternalName": {svc: service("default", "web", externalName), old: service("default", "web", withIP)},
		"update ExternalName stays":        {svc: service("default", "web", externalName), old: service("default", "web", externalName)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := wantsAllocation(tc.svc.Namespace, tc.svc, tc.old); got != tc.want {
				t.Errorf("wantsAllocation = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApplyNodePorts(t *testing.T) {
	twoPorts := func(typ api.ServiceType, chosen int32) *api.Service {
		return service("default", "web", func(s *api.Service) {
			s.Spec.Type = typ
			s.Spec.Ports = []api.ServicePort{{Name: "a", Port: 80, NodePort: chosen}, {Name: "b", Port: 81}}
		})
	}
	resp := serviceip.Response{ClusterIPs: []string{"10.96.0.9"}, NodePorts: []int32{30080, 30081}}
	for name, tc := range map[string]struct {
		svc  *api.Service
		want []int32
	}{
		"NodePort takes the super node ports": {twoPorts(api.ServiceTypeNodePort, 0), []int32{30080, 30081}},
		"LoadBalancer takes them too":         {twoPorts(api.ServiceTypeLoadBalancer, 0), []int32{30080, 30081}},
		"a node port the user chose stays":    {twoPorts(api.ServiceTypeNodePort, 31111), []int32{31111, 30081}},
		"ClusterIP has none":                  {twoPorts(api.ServiceTypeClusterIP, 0), []int32{0, 0}},
	} {
		if err := apply(tc.svc, resp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := []int32{tc.svc.Spec.Ports[0].NodePort, tc.svc.Spec.Ports[1].NodePort}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: node ports (-want +got):\n%s", name, diff)
		}
	}
}

func TestDecode(t *testing.T) {
	status := func(code int32, reason metav1.StatusReason, msg string) []byte {
		b, _ := json.Marshal(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg})
		return b
	}
	if _, err := decode(http.StatusUnprocessableEntity, status(422, metav1.StatusReasonInvalid, "provided IP is already allocated")); !apierrors.IsInvalid(err) ||
		err.Error() != "vnest Service IP allocator: provided IP is already allocated" {
		t.Errorf("a Status answer: err = %v, want it as an Invalid error", err)
	}
	if _, err := decode(http.StatusBadGateway, []byte("upstream gone")); err == nil || apierrors.ReasonForError(err) != metav1.StatusReasonUnknown ||
		int(err.(apierrors.APIStatus).Status().Code) != http.StatusBadGateway {
		t.Errorf("a text answer: err = %v, want a 502 API error", err)
	}
	resp, err := decode(http.StatusOK, []byte(`{"clusterIPs":["10.96.0.9"],"ipFamilies":["IPv4"]}`))
	if err != nil || !cmp.Equal(resp.ClusterIPs, []string{"10.96.0.9"}) {
		t.Errorf("decode = %+v, %v", resp, err)
	}
}

// TestAdmit runs the plugin against an allocator over TLS with a client certificate: the IPs
// of the answer land on the Service, the allocator sees the Service with its namespace, and an
// unreachable allocator fails the create with a 503 that says so.
func TestAdmit(t *testing.T) {
	var got serviceip.Request
	var sawClientCert bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawClientCert = r.TLS != nil && len(r.TLS.PeerCertificates) == 1 && r.TLS.PeerCertificates[0].Subject.CommonName == "vnest:kubelet-client"
		if r.URL.Path != serviceip.Path || r.Method != http.MethodPost {
			http.Error(w, "wrong path", http.StatusNotFound)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		single := corev1.IPFamilyPolicySingleStack
		_ = json.NewEncoder(w).Encode(serviceip.Response{ClusterIPs: []string{"10.96.0.9"}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}, IPFamilyPolicy: &single})
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	certFile, keyFile := clientCert(t)

	p, err := New(Config{URL: srv.URL + serviceip.Path, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	svc := service("", "web", nil) // a create request's object has no namespace yet
	if err := p.Admit(context.Background(), attributes(svc, nil, false), nil); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if !sawClientCert {
		t.Error("the allocator did not get the client certificate")
	}
	if got.Service.Namespace != "default" || got.Service.Name != "web" || got.UID != "" || len(got.Service.Spec.Ports) != 1 {
		t.Errorf("the allocator got %+v", got)
	}
	if svc.Spec.ClusterIP != "10.96.0.9" || !cmp.Equal(svc.Spec.ClusterIPs, []string{"10.96.0.9"}) ||
		!cmp.Equal(svc.Spec.IPFamilies, []api.IPFamily{api.IPv4Protocol}) || svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != api.IPFamilyPolicySingleStack {
		t.Errorf("Service spec after admission: %+v", svc.Spec)
	}

	generated := service("", "", func(s *api.Service) { s.GenerateName = "latency-svc-" })
	if err := p.Admit(context.Background(), attributes(generated, nil, false), nil); err != nil {
		t.Fatalf("Admit with generateName: %v", err)
	}
	if !strings.HasPrefix(got.Service.Name, "latency-svc-") || len(got.Service.Name) <= len("latency-svc-") || generated.Name != got.Service.Name {
		t.Errorf("generateName: the allocator got name %q, the Service has %q; want one generated name on both", got.Service.Name, generated.Name)
	}

	dry := service("", "dry", nil)
	if err := p.Admit(context.Background(), attributes(dry, nil, true), nil); err != nil || dry.Spec.ClusterIP != "" {
		t.Errorf("a dry run asked the allocator: err %v, clusterIP %q", err, dry.Spec.ClusterIP)
	}

	srv.Close()
	p.retryFor = time.Second
	start := time.Now()
	err = p.Admit(context.Background(), attributes(service("", "web2", nil), nil, false), nil)
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "is unreachable") {
		t.Errorf("unreachable allocator: err = %v, want 503 saying so", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("gave up after %v, want retries for 1s", d)
	}
}

// TestAdmitRetries: an allocator that does not serve this tenant yet (403 from the kubelet
// proxy's identification, 503) is asked again; its other errors are final.
func TestAdmitRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			http.Error(w, "not signed by the CA of any tenant this syncer serves", http.StatusForbidden)
		case 2:
			http.Error(w, "not served yet", http.StatusServiceUnavailable)
		case 3:
			_ = json.NewEncoder(w).Encode(serviceip.Response{ClusterIPs: []string{"10.96.0.9"}})
		default:
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(metav1.Status{Status: metav1.StatusFailure, Code: 422, Reason: metav1.StatusReasonInvalid, Message: "provided IP is already allocated"})
		}
	}))
	defer srv.Close()
	certFile, keyFile := clientCert(t)
	p, err := New(Config{URL: srv.URL, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	svc := service("", "web", nil)
	if err := p.Admit(context.Background(), attributes(svc, nil, false), nil); err != nil || svc.Spec.ClusterIP != "10.96.0.9" || calls.Load() != 3 {
		t.Errorf("Admit: %v, ClusterIP %q after %d calls; want 10.96.0.9 after 3", err, svc.Spec.ClusterIP, calls.Load())
	}
	err = p.Admit(context.Background(), attributes(service("", "web2", nil), nil, false), nil)
	if !apierrors.IsInvalid(err) || calls.Load() != 4 {
		t.Errorf("Admit: %v after %d calls, want the allocator's Invalid at once", err, calls.Load())
	}
}

func attributes(svc, old *api.Service, dryRun bool) admission.Attributes {
	op := admission.Create
	if old != nil {
		op = admission.Update
	}
	return admission.NewAttributesRecord(svc, old, api.Kind("Service").WithVersion("version"), "default", svc.Name,
		api.Resource("services").WithVersion("version"), "", op, nil, dryRun, &user.DefaultInfo{})
}

// clientCert writes a self-signed client certificate with the kubelet client's name.
func clientCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vnest:kubelet-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
