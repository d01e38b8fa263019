package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
