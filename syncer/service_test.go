package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/internal/ownership"
)

var stampedMeta = metav1.ObjectMeta{
	Namespace:   testSuperNS,
	Name:        "web",
	Labels:      map[string]string{ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"},
	Annotations: map[string]string{ownership.AnnotationTenantUID: "uid-web", ownership.AnnotationVirtualCluster: "default/demo"},
}

func tenantService(mutate func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.10", ClusterIPs: []string{"10.0.0.10"},
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if mutate != nil {
		mutate(svc)
	}
	return svc
}

func TestTranslateService(t *testing.T) {
	cases := map[string]struct {
		in   *corev1.Service
		want corev1.ServiceSpec
	}{
		"cluster IP is left to the super cluster": {
			in: tenantService(nil),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		"headless stays headless": {
			in: tenantService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"}, Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		"node ports are the super cluster's": {
			in: tenantService(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"},
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
				Ports:                 []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := translateService(tc.in, testOwner)
			if diff := cmp.Diff(corev1.Service{ObjectMeta: stampedMeta, Spec: tc.want}, *got); diff != "" {
				t.Errorf("translateService (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceDownEqualAndMerge(t *testing.T) {
	desired := translateService(tenantService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }), testOwner)
	existing := desired.DeepCopy()
	existing.Spec.ClusterIP, existing.Spec.ClusterIPs = "10.96.0.7", []string{"10.96.0.7"}
	existing.Spec.Ports[0].NodePort = 31000
	if !serviceDownEqual(desired, existing) {
		t.Error("allocated cluster IP and node port count as drift")
	}
	desired.Spec.Ports = append(desired.Spec.Ports, corev1.ServicePort{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9090})
	if serviceDownEqual(desired, existing) {
		t.Error("a new port does not count as drift")
	}
	merged := mergeService(desired, existing)
	if merged.Spec.ClusterIP != "10.96.0.7" || merged.Spec.Ports[0].NodePort != 31000 || merged.Spec.Ports[1].NodePort != 0 {
		t.Errorf("merge lost what the super cluster allocated: %+v", merged.Spec)
	}

	// Session affinity changes on an existing Service go down too.
	existing = merged
	desired.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	desired.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	if serviceDownEqual(desired, existing) {
		t.Error("a session affinity change does not count as drift")
	}
	merged = mergeService(desired, existing)
	if merged.Spec.SessionAffinity != corev1.ServiceAffinityClientIP || *merged.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != 60 || !serviceDownEqual(desired, merged) {
		t.Errorf("merge did not take the session affinity: %+v", merged.Spec)
	}
}

func TestSyncServiceStatusUp(t *testing.T) {
	super := translateService(tenantService(nil), testOwner)
	super.Spec.ClusterIP = "10.96.0.7"
	super.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	h := newHarness(t, []object{super}, []object{tenantService(nil)})
	if err := h.s.syncService(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update services/status default/web"}, writes(h.tenantCS)); diff != "" {
		t.Errorf("tenant writes (-want +got):\n%s", diff)
	}
	if got := writes(h.super); len(got) > 0 {
		t.Errorf("super writes: %v", got)
	}
}
