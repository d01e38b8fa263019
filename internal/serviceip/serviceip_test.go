package serviceip

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNeedsClusterIP(t *testing.T) {
	for name, tc := range map[string]struct {
		spec corev1.ServiceSpec
		want bool
	}{
		"ClusterIP":            {corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}, true},
		"type left to default": {corev1.ServiceSpec{}, true},
		"NodePort":             {corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}, true},
		"LoadBalancer":         {corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}, true},
		"IP chosen":            {corev1.ServiceSpec{ClusterIP: "10.96.0.9"}, true},
		"headless":             {corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}, false},
		"ExternalName":         {corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}, false},
	} {
		if got := NeedsClusterIP(&tc.spec); got != tc.want {
			t.Errorf("%s: NeedsClusterIP = %v, want %v", name, got, tc.want)
		}
	}
}
