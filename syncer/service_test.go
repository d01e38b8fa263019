package syncer

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
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

// TestTranslateTenantAPIService: the tenant's default/kubernetes Service never asks for its
// cluster IP (the super cluster's own kubernetes Service has it, or it is outside the super
// range), so its super copy gets one without a refusal and without a ServiceAllocationDiffers
// warning in every tenant. A Service of that name in another namespace is like any other.
func TestTranslateTenantAPIService(t *testing.T) {
	api := tenantService(func(s *corev1.Service) {
		s.Name, s.Spec.Selector, s.Spec.ClusterIP, s.Spec.ClusterIPs = "kubernetes", nil, "10.96.0.1", []string{"10.96.0.1"}
	})
	if got := translateService(api, testOwner); got.Spec.ClusterIP != "" || got.Spec.ClusterIPs != nil || requestsAllocations(got) {
		t.Errorf("default/kubernetes asks for %q %v, want no cluster IP", got.Spec.ClusterIP, got.Spec.ClusterIPs)
	}
	other := api.DeepCopy()
	other.Namespace = "team-a"
	if got := translateService(other, testOwner); got.Spec.ClusterIP != "10.96.0.1" {
		t.Errorf("team-a/kubernetes asks for %q, want its own 10.96.0.1", got.Spec.ClusterIP)
	}
}

func TestTranslateService(t *testing.T) {
	cases := map[string]struct {
		in   *corev1.Service
		want corev1.ServiceSpec
	}{
		"the tenant's cluster IP is asked for": {
			in: tenantService(nil),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.10", ClusterIPs: []string{"10.0.0.10"}, Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		"a node port left over from an earlier type is not": {
			in: tenantService(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.0.0.10", ClusterIPs: []string{"10.0.0.10"}, Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		"ExternalName has no cluster IP": {
			in: tenantService(func(s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalName, s.Spec.Selector, s.Spec.Ports = corev1.ServiceTypeExternalName, "example.com", nil, nil
			}),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
		},
		"headless stays headless": {
			in: tenantService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"}, Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
		"the tenant's node ports are asked for": {
			in: tenantService(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.0.0.10", ClusterIPs: []string{"10.0.0.10"}, Selector: map[string]string{"app": "web"},
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
				Ports:                 []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}}},
		},
		"a LoadBalancer keeps the source ranges it admits": {
			in: tenantService(func(s *corev1.Service) {
				s.Spec.Type, s.Spec.LoadBalancerSourceRanges = corev1.ServiceTypeLoadBalancer, []string{"192.0.2.0/24"}
			}),
			want: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.0.0.10", ClusterIPs: []string{"10.0.0.10"}, Selector: map[string]string{"app": "web"},
				LoadBalancerSourceRanges: []string{"192.0.2.0/24"},
				Ports:                    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
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
	desired.Spec.Ports[1].NodePort = 30090 // the tenant's
	merged := mergeService(desired, existing)
	if merged.Spec.ClusterIP != "10.96.0.7" || merged.Spec.Ports[0].NodePort != 31000 || merged.Spec.Ports[1].NodePort != 30090 {
		t.Errorf("merge lost what the super cluster allocated or did not ask for the tenant's new node port: %+v", merged.Spec)
	}
	if !serviceDownEqual(desired, merged) {
		t.Error("the merged Service still counts as drift")
	}

	// ExternalName → ClusterIP asks for the tenant's cluster IP.
	external := translateService(tenantService(func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
	}), testOwner)
	if got := mergeService(translateService(tenantService(nil), testOwner), external); got.Spec.ClusterIP != "10.0.0.10" || !slices.Equal(got.Spec.ClusterIPs, []string{"10.0.0.10"}) {
		t.Errorf("ExternalName → ClusterIP: cluster IPs %q %v, want the tenant's 10.0.0.10", got.Spec.ClusterIP, got.Spec.ClusterIPs)
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

	// So do the source ranges a LoadBalancer admits: a narrower list must not leave the wider open.
	existing = merged
	desired.Spec.Type, desired.Spec.LoadBalancerSourceRanges = corev1.ServiceTypeLoadBalancer, []string{"192.0.2.0/24"}
	existing.Spec.Type, existing.Spec.LoadBalancerSourceRanges = corev1.ServiceTypeLoadBalancer, []string{"192.0.2.0/24", "198.51.100.0/24"}
	if serviceDownEqual(desired, existing) {
		t.Error("a change of the source ranges does not count as drift")
	}
	merged = mergeService(desired, existing)
	if !slices.Equal(merged.Spec.LoadBalancerSourceRanges, []string{"192.0.2.0/24"}) || !serviceDownEqual(desired, merged) {
		t.Errorf("merge did not take the source ranges: %v", merged.Spec.LoadBalancerSourceRanges)
	}
}

// TestServiceTrafficSettingsFollowTheTenant: the traffic settings a tenant changes go down to an
// existing super Service; a setting the tenant left unset is the super apiserver's (defaulted,
// or dropped with a change of type), and the load-balancer class changes only with the type.
func TestServiceTrafficSettingsFollowTheTenant(t *testing.T) {
	type traffic struct {
		External       corev1.ServiceExternalTrafficPolicy
		Internal       *corev1.ServiceInternalTrafficPolicy
		IPFamilyPolicy *corev1.IPFamilyPolicy
		IPFamilies     []corev1.IPFamily
		Distribution   *string
		Class          *string
	}
	trafficOf := func(s *corev1.Service) traffic {
		return traffic{s.Spec.ExternalTrafficPolicy, s.Spec.InternalTrafficPolicy, s.Spec.IPFamilyPolicy,
			s.Spec.IPFamilies, s.Spec.TrafficDistribution, s.Spec.LoadBalancerClass}
	}
	local, cluster := corev1.ServiceInternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyCluster
	single, preferDual := corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack
	dualFamilies := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	lb := func(class string) func(*corev1.Service) {
		return func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.LoadBalancerClass = ptr.To(class)
		}
	}
	cases := map[string]struct {
		tenant, super func(*corev1.Service)
		wantEqual     bool
		want          traffic // of the merged super Service
	}{
		"external traffic policy follows": {
			tenant: func(s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeNodePort, "Local"
			},
			super: func(s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalTrafficPolicy = corev1.ServiceTypeNodePort, "Cluster"
			},
			want: traffic{External: "Local"},
		},
		"an unset external traffic policy is the super apiserver's": {
			super:     func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = "Cluster" },
			wantEqual: true, want: traffic{External: "Cluster"},
		},
		"internal traffic policy follows": {
			tenant: func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = &local },
			super:  func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = &cluster },
			want:   traffic{Internal: &local},
		},
		"an unset internal traffic policy is the super apiserver's": {
			super:     func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = &cluster },
			wantEqual: true, want: traffic{Internal: &cluster},
		},
		"IP family policy follows, the families stay the super cluster's": {
			tenant: func(s *corev1.Service) { s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &single, dualFamilies[:1] },
			super:  func(s *corev1.Service) { s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &preferDual, dualFamilies },
			want:   traffic{IPFamilyPolicy: &single, IPFamilies: dualFamilies},
		},
		"an unset IP family policy is the super apiserver's": {
			super:     func(s *corev1.Service) { s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &single, dualFamilies[:1] },
			wantEqual: true, want: traffic{IPFamilyPolicy: &single, IPFamilies: dualFamilies[:1]},
		},
		"traffic distribution follows": {
			tenant: func(s *corev1.Service) {
				s.Spec.TrafficDistribution = ptr.To(corev1.ServiceTrafficDistributionPreferClose)
			},
			want: traffic{Distribution: ptr.To(corev1.ServiceTrafficDistributionPreferClose)},
		},
		"traffic distribution removed": {
			super: func(s *corev1.Service) {
				s.Spec.TrafficDistribution = ptr.To(corev1.ServiceTrafficDistributionPreferClose)
			},
		},
		"load-balancer class is immutable on a LoadBalancer": {
			tenant: lb("b"), super: lb("a"),
			wantEqual: true, want: traffic{External: "Cluster", Class: ptr.To("a")},
		},
		"load-balancer class comes with the type": {
			tenant: lb("b"),
			want:   traffic{External: "Cluster", Class: ptr.To("b")},
		},
		"load-balancer class goes with the type": {
			super: lb("a"),
			want:  traffic{External: "Cluster"}, // dropped by the super apiserver with the type
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			desired := translateService(tenantService(tc.tenant), testOwner)
			existing := translateService(tenantService(tc.super), testOwner)
			if got := serviceDownEqual(desired, existing); got != tc.wantEqual {
				t.Errorf("serviceDownEqual = %v, want %v", got, tc.wantEqual)
			}
			merged := mergeService(desired, existing)
			if diff := cmp.Diff(tc.want, trafficOf(merged)); diff != "" {
				t.Errorf("merged traffic settings (-want +got):\n%s", diff)
			}
			if !serviceDownEqual(desired, merged) {
				t.Error("the merged Service still counts as drift")
			}
		})
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

// TestSyncServiceAsksForTheTenantsAllocations: a super Service created after the fact asks for
// the tenant's cluster IP and node port; if the super cluster refuses them, the Service is
// created without them and the tenant Service gets a warning.
func TestSyncServiceAsksForTheTenantsAllocations(t *testing.T) {
	nodePort := func(s *corev1.Service) { s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30080 }
	defer func(d []time.Duration) { freedAfterDelete = d }(freedAfterDelete)
	freedAfterDelete = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond}
	for name, tc := range map[string]struct {
		refuse      bool
		field       *field.Path // refused at; default spec.clusterIPs[0]
		freedAfter  int         // refused this many times, then granted (0: always refused)
		wantCreates int
		wantIP      string
		wantPort    int32
		wantEvent   bool
	}{
		"granted":                  {wantCreates: 1, wantIP: "10.0.0.10", wantPort: 30080},
		"refused as invalid":       {refuse: true, wantCreates: 2 + len(freedAfterDelete), wantEvent: true},
		"freed after a moment":     {refuse: true, freedAfter: 2, wantCreates: 3, wantIP: "10.0.0.10", wantPort: 30080},
		"invalid in another field": {refuse: true, field: field.NewPath("spec", "selector"), wantCreates: 1},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil, []object{tenantService(nodePort)})
			at := field.NewPath("spec", "clusterIPs").Index(0)
			if tc.field != nil {
				at = tc.field
			}
			var creates int
			h.super.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
				creates++
				svc := a.(k8stesting.CreateAction).GetObject().(*corev1.Service)
				if tc.refuse && (tc.freedAfter == 0 || creates <= tc.freedAfter) && (svc.Spec.ClusterIP != "" || svc.Spec.Ports[0].NodePort != 0) {
					return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name,
						field.ErrorList{field.Invalid(at, svc.Spec.ClusterIP, "provided IP is already allocated")})
				}
				return false, nil, nil
			})
			err := h.s.syncService(testContext(t), h.t, "default", "web")
			if tc.field != nil { // not about allocations: refused as before, and said so
				evs := events(h.recorder)
				if !apierrors.IsInvalid(err) || creates != tc.wantCreates || len(evs) != 1 || !strings.Contains(evs[0], "SuperClusterRejected") {
					t.Errorf("error %v after %d creates, events %q; want the Invalid error after %d create and one SuperClusterRejected event", err, creates, evs, tc.wantCreates)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.super.CoreV1().Services(testSuperNS).Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if creates != tc.wantCreates || got.Spec.ClusterIP != tc.wantIP || got.Spec.Ports[0].NodePort != tc.wantPort {
				t.Errorf("%d creates, super Service %q:%d; want %d creates, %q:%d", creates, got.Spec.ClusterIP, got.Spec.Ports[0].NodePort, tc.wantCreates, tc.wantIP, tc.wantPort)
			}
			evs := events(h.recorder)
			if hasEvent := len(evs) == 1 && strings.Contains(evs[0], "ServiceAllocationDiffers") && strings.Contains(evs[0], "already allocated"); hasEvent != tc.wantEvent || len(evs) > 1 {
				t.Errorf("events %q, want a ServiceAllocationDiffers warning: %v", evs, tc.wantEvent)
			}
		})
	}
}
