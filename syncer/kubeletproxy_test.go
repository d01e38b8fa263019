package syncer

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/pki"
	"github.com/vnest-dev/vnest/syncer/kubeletproxy"
)

func TestKubeletProxyEndpoint(t *testing.T) {
	tests := map[string]struct {
		bind, advertise string
		want            kubeletEndpoint
		wantErr         bool
	}{
		"off":                         {},
		"IP":                          {bind: "0.0.0.0:10250", advertise: "10.0.0.5", want: kubeletEndpoint{IP: "10.0.0.5", Port: 10250}},
		"IP and port":                 {bind: ":10250", advertise: "192.0.2.1:30250", want: kubeletEndpoint{IP: "192.0.2.1", Port: 30250}},
		"IPv6":                        {bind: "[::]:10250", advertise: "fd00::5", want: kubeletEndpoint{IP: "fd00::5", Port: 10250}},
		"no advertise address":        {bind: ":10250", wantErr: true},
		"a name, not an IP":           {bind: ":10250", advertise: "syncer.example.com", wantErr: true},
		"advertise without proxy":     {advertise: "10.0.0.5", wantErr: true},
		"bind without port":           {bind: "0.0.0.0", advertise: "10.0.0.5", wantErr: true},
		"port 0 cannot be advertised": {bind: ":0", advertise: "10.0.0.5", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := kubeletProxyEndpoint(tc.bind, tc.advertise)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("kubeletProxyEndpoint(%q, %q) = %+v, %v; want %+v, error %v", tc.bind, tc.advertise, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestKubeletEndpointApply(t *testing.T) {
	super := []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.1.0.7"},
		{Type: corev1.NodeInternalIP, Address: "fd00::7"},
		{Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
		{Type: corev1.NodeHostName, Address: "node-7"},
	}
	tests := map[string]struct {
		ep        kubeletEndpoint
		wantAddrs []corev1.NodeAddress
		wantPort  int32
	}{
		"proxy off: the super node's addresses": {wantAddrs: super},
		"proxy on: its IP is the only InternalIP": {
			ep: kubeletEndpoint{IP: "10.0.0.5", Port: 10250},
			wantAddrs: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "10.0.0.5"},
				{Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
				{Type: corev1.NodeHostName, Address: "node-7"},
			},
			wantPort: 10250,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n := virtualNode(&corev1.Node{Status: corev1.NodeStatus{Addresses: super}}, nil, metav1.Now())
			tc.ep.apply(n)
			if diff := cmp.Diff(tc.wantAddrs, n.Status.Addresses); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if got := n.Status.DaemonEndpoints.KubeletEndpoint.Port; got != tc.wantPort {
				t.Errorf("kubelet port %d, want %d", got, tc.wantPort)
			}
		})
	}
}

// kubeletClientCertPEM issues a kubelet client certificate of the tenant CA in dir, as the
// manager does, a new one at every call (as at a renewal).
func kubeletClientCertPEM(t *testing.T, dir string) []byte {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(dir, layout.CAName, "test-tenant-ca")
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, layout.KubeletClientCertName+".crt")
	if err := os.Remove(certFile); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if _, err := ca.Ensure(dir, layout.KubeletClientCertName, layout.KubeletClientCertSpec()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestKubeletClientPinFromPKISecret: the kubelet proxy pins the kubelet client certificate in
// the tenant's PKI Secret when the syncer can read it there, and takes the CA and the name
// alone when it cannot (no Secret, refused, no certificate); a failure worth retrying is
// retried. A renewed certificate makes a new fingerprint, so the tenant is served again with
// the new pin.
func TestKubeletClientPinFromPKISecret(t *testing.T) {
	dir := t.TempDir()
	certPEM := kubeletClientCertPEM(t, dir)
	block, _ := pem.Decode(certPEM)
	caPEM, err := os.ReadFile(filepath.Join(dir, layout.CAName+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "teams", Name: "a"}}
	vc.Status.ClusterKey = "a-1234"
	pkiSecret := func(data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "teams", Name: vc.PKISecretName()}, Data: data}
	}
	kubeconfig := []byte(`apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "https://127.0.0.1:1", certificate-authority-data: ` + base64.StdEncoding.EncodeToString(caPEM) + `}}]
users: [{name: t, user: {token: x}}]
contexts: [{name: t, context: {cluster: t, user: t}}]
current-context: t
`)
	for name, tc := range map[string]struct {
		objs    []object
		readErr error
		want    []byte
		wantErr bool
	}{
		"certificate in the PKI Secret": {objs: []object{pkiSecret(map[string][]byte{layout.KubeletClientCertName + ".crt": certPEM})}, want: block.Bytes},
		"no PKI Secret":                 {},
		"PKI Secret refused": {objs: []object{pkiSecret(map[string][]byte{layout.KubeletClientCertName + ".crt": certPEM})},
			readErr: apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "a-pki", errors.New("no"))},
		"no certificate in the PKI Secret": {objs: []object{pkiSecret(map[string][]byte{"sa.key": []byte("x")})}},
		"not a certificate":                {objs: []object{pkiSecret(map[string][]byte{layout.KubeletClientCertName + ".crt": []byte("garbage")})}},
		"super cluster failing": {objs: []object{pkiSecret(nil)},
			readErr: apierrors.NewInternalError(errors.New("etcd")), wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			opts := &completedOptions{Options: &Options{QPS: 5, Burst: 10}, kubelet: kubeletEndpoint{IP: "10.0.0.5", Port: 10250}}
			h, tn := startFromPKISecret(t, opts, tc.objs, tc.readErr, tc.wantErr, vc, kubeconfig)
			if tn == nil {
				return
			}
			h.s.tenants = map[string]*tenant{tn.key: tn}
			got := h.s.proxyTenants()
			if len(got) != 1 || got[0].CA == nil || !bytes.Equal(got[0].KubeletClient, tc.want) {
				t.Fatalf("kubelet proxy tenants %+v; want one with the CA, pinned to the PKI Secret's certificate: %v", got, tc.want != nil)
			}
		})
	}
	renewed := kubeletClientCertPEM(t, dir)
	if fingerprintOf(kubeconfig, tenantPKI{kubeletClient: certPEM}) == fingerprintOf(kubeconfig, tenantPKI{kubeletClient: renewed}) ||
		fingerprintOf(kubeconfig, tenantPKI{kubeletClient: certPEM}) == fingerprintOf(kubeconfig, tenantPKI{}) {
		t.Error("a tenant served with one kubelet client certificate would go on with it after the manager renewed it")
	}
	if fingerprintOf(kubeconfig, tenantPKI{saKey: certPEM}) == fingerprintOf(kubeconfig, tenantPKI{kubeletClient: certPEM}) {
		t.Error("the fingerprint does not tell the service-account key from the kubelet client certificate")
	}
}

// TestRecheckKubeletClientPin: a certificate the kubelet proxy refused for not being the pin
// makes the syncer re-read the tenant's PKI Secret (the VirtualCluster is queued), at most once
// per pinRecheckInterval, however often it is presented.
func TestRecheckKubeletClientPin(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx := testContext(t)
	queued := func() []string {
		var got []string
		for h.s.vcQueue.Len() > 0 {
			k, _ := h.s.vcQueue.Get()
			got = append(got, k)
			h.s.vcQueue.Done(k)
		}
		return got
	}
	for range 3 {
		h.s.recheckKubeletClientPin(ctx, kubeletproxy.Tenant{ClusterKey: testKey})
	}
	h.s.recheckKubeletClientPin(ctx, kubeletproxy.Tenant{ClusterKey: "not-served"})
	if diff := cmp.Diff([]string{"default/demo"}, queued()); diff != "" {
		t.Errorf("queued VirtualClusters (-want +got):\n%s", diff)
	}
	h.s.recheckKubeletClientPin(ctx, kubeletproxy.Tenant{ClusterKey: testKey})
	if got := queued(); len(got) != 0 {
		t.Errorf("queued %v again within %v", got, pinRecheckInterval)
	}
	h.t.pinRechecked.Add(-int64(pinRecheckInterval)) // as if the interval had passed
	h.s.recheckKubeletClientPin(ctx, kubeletproxy.Tenant{ClusterKey: testKey})
	if diff := cmp.Diff([]string{"default/demo"}, queued()); diff != "" {
		t.Errorf("queued VirtualClusters after %v (-want +got):\n%s", pinRecheckInterval, diff)
	}
}
