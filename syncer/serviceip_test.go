package syncer

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/internal/serviceip"
)

const superIP = "10.96.0.50"

// reservedService is the super Service the allocator makes for tenantService(nil): the
// tenant's ownership labels, no tenant UID, a reservation time, the super-allocated IP.
func reservedService(at time.Time, mutate func(*corev1.Service)) *corev1.Service {
	svc := translateService(tenantService(func(s *corev1.Service) { s.UID = "" }), testOwner)
	svc.Annotations[serviceip.AnnotationReservedAt] = at.UTC().Format(time.RFC3339)
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = superIP, []string{superIP}
	svc.UID = "uid-super-web"
	if mutate != nil {
		mutate(svc)
	}
	return svc
}

// allocatingSuper makes the fake super cluster allocate superIP to Services created or updated
// without one.
func allocatingSuper(cs *fake.Clientset) {
	allocate := func(a k8stesting.Action) (bool, runtime.Object, error) {
		svc := a.(interface{ GetObject() runtime.Object }).GetObject().(*corev1.Service)
		if svc.Spec.ClusterIP == "" && serviceip.NeedsClusterIP(&svc.Spec) {
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = superIP, []string{superIP}
			svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
		for i := range svc.Spec.Ports {
			if svc.Spec.Type == corev1.ServiceTypeNodePort && svc.Spec.Ports[i].NodePort == 0 {
				svc.Spec.Ports[i].NodePort = 30080 + int32(i)
			}
		}
		return false, nil, nil
	}
	cs.PrependReactor("create", "services", allocate)
	cs.PrependReactor("update", "services", allocate)
}

func TestAllocateServiceIP(t *testing.T) {
	now := time.Now()
	request := func(mutate func(*corev1.Service)) serviceip.Request {
		svc := tenantService(func(s *corev1.Service) { s.UID, s.Spec.ClusterIP, s.Spec.ClusterIPs = "", "", nil })
		if mutate != nil {
			mutate(svc)
		}
		return serviceip.Request{Service: *svc}
	}
	nodePort := func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }
	cases := map[string]struct {
		super         []object
		tenant        []object
		req           serviceip.Request
		wantIPs       []string
		wantNodePorts []int32
		wantErr       func(error) bool
		wantWrites    []string
	}{
		"creates a reservation": {
			req: request(nil), wantIPs: []string{superIP},
			wantWrites: []string{"create services demo-5c9a8459-default/web"},
		},
		"a retried create reuses the reservation": {
			super: []object{reservedService(now, nil)}, req: request(nil), wantIPs: []string{superIP},
		},
		"the IP the user asked for is requested": {
			req: request(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.77", []string{"10.96.0.77"} }), wantIPs: []string{"10.96.0.77"},
			wantWrites: []string{"create services demo-5c9a8459-default/web"},
		},
		"a reservation for another IP is replaced": {
			super:      []object{reservedService(now, nil)},
			req:        request(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.77", []string{"10.96.0.77"} }),
			wantIPs:    []string{"10.96.0.77"},
			wantWrites: []string{"create services demo-5c9a8459-default/web", "delete services demo-5c9a8459-default/web"},
		},
		"the super Service of an earlier tenant Service is replaced": {
			super: []object{reservedService(now, func(s *corev1.Service) {
				delete(s.Annotations, serviceip.AnnotationReservedAt)
				s.Annotations[ownership.AnnotationTenantUID] = "uid-earlier"
			})},
			req: request(nil), wantIPs: []string{superIP},
			wantWrites: []string{"create services demo-5c9a8459-default/web", "delete services demo-5c9a8459-default/web"},
		},
		"an existing tenant Service keeps its super Service": {
			super:   []object{reservedService(now, func(s *corev1.Service) { s.Annotations[ownership.AnnotationTenantUID] = "uid-web" })},
			tenant:  []object{tenantDefaultNS, tenantService(nil)},
			req:     request(nil),
			wantErr: apierrors.IsAlreadyExists,
		},
		"an update to a type with cluster IPs changes the ExternalName super Service in place": {
			super: []object{reservedService(now, func(s *corev1.Service) {
				delete(s.Annotations, serviceip.AnnotationReservedAt)
				s.Annotations[ownership.AnnotationTenantUID] = "uid-web"
				s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ServiceTypeExternalName, "example.com", "", nil
			})},
			req:        serviceip.Request{Service: request(nil).Service, UID: "uid-web"},
			wantIPs:    []string{superIP},
			wantWrites: []string{"update services demo-5c9a8459-default/web"},
		},
		"a foreign super Service is never touched": {
			super: []object{reservedService(now, func(s *corev1.Service) { s.Labels[ownership.LabelClusterKey] = "other-00000000" })},
			req:   request(nil), wantErr: apierrors.IsConflict,
		},
		"another tenant namespace's super Service is never touched": {
			super: []object{reservedService(now, func(s *corev1.Service) { s.Labels[ownership.LabelTenantNamespace] = "other" })},
			req:   request(nil), wantErr: apierrors.IsConflict,
		},
		"a NodePort Service gets the super node ports": {
			req: request(nodePort), wantIPs: []string{superIP}, wantNodePorts: []int32{30080},
			wantWrites: []string{"create services demo-5c9a8459-default/web"},
		},
		"a node port the user chose is requested": {
			req:     request(func(s *corev1.Service) { nodePort(s); s.Spec.Ports[0].NodePort = 31111 }),
			wantIPs: []string{superIP}, wantNodePorts: []int32{31111},
			wantWrites: []string{"create services demo-5c9a8459-default/web"},
		},
		"a reservation of another type is replaced": {
			super: []object{reservedService(now, nil)}, req: request(nodePort), wantIPs: []string{superIP}, wantNodePorts: []int32{30080},
			wantWrites: []string{"create services demo-5c9a8459-default/web", "delete services demo-5c9a8459-default/web"},
		},
		"headless needs no allocation": {
			req:     request(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
			wantErr: apierrors.IsBadRequest,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tenantObjs := tc.tenant
			if tenantObjs == nil {
				tenantObjs = []object{tenantDefaultNS}
			}
			h := newHarness(t, append([]object{superDefaultNS}, tc.super...), tenantObjs)
			allocatingSuper(h.super)
			resp, err := h.s.allocateServiceIP(testContext(t), h.t, tc.req)
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("err = %v, want a different error", err)
				}
			} else if err != nil {
				t.Fatalf("allocateServiceIP: %v", err)
			}
			if diff := cmp.Diff(tc.wantIPs, resp.ClusterIPs); diff != "" {
				t.Errorf("cluster IPs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNodePorts, resp.NodePorts); diff != "" {
				t.Errorf("node ports (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWrites, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			if got := writes(h.tenantCS); len(got) > 0 {
				t.Errorf("the allocator wrote the tenant: %v", got)
			}
			if tc.wantIPs == nil {
				return
			}
			got, err := h.super.CoreV1().Services(testSuperNS).Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Labels[ownership.LabelClusterKey] != testKey || got.Labels[ownership.LabelTenantNamespace] != "default" {
				t.Errorf("the super Service lacks the tenant's ownership labels: %v", got.Labels)
			}
			_, reserved := got.Annotations[serviceip.AnnotationReservedAt]
			if !reserved || string(tc.req.UID) != got.Annotations[ownership.AnnotationTenantUID] {
				t.Errorf("annotations %v: want a reservation with tenant UID %q", got.Annotations, tc.req.UID)
			}
		})
	}
}

// TestSyncServiceReservation: the down sync adopts a reservation for the tenant Service with
// its IPs, replaces one made for other IPs, keeps one without a tenant Service for the grace
// period and deletes it after, and never touches a foreign one.
func TestSyncServiceReservation(t *testing.T) {
	now := time.Now()
	tenantWithSuperIP := tenantService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = superIP, []string{superIP} })
	cases := map[string]struct {
		super      *corev1.Service
		tenant     []object
		wantWrites []string
		wantUID    string // of the super Service after the sync; "-" when it must be gone or untouched
	}{
		"adopted by the tenant Service with its IPs": {
			super: reservedService(now, nil), tenant: []object{tenantDefaultNS, tenantWithSuperIP},
			wantWrites: []string{"update services demo-5c9a8459-default/web"}, wantUID: "uid-web",
		},
		"adopted after an update from ExternalName": {
			super:  reservedService(now, func(s *corev1.Service) { s.Annotations[ownership.AnnotationTenantUID] = "uid-web" }),
			tenant: []object{tenantDefaultNS, tenantWithSuperIP}, wantWrites: []string{"update services demo-5c9a8459-default/web"}, wantUID: "uid-web",
		},
		"not adopted by a later tenant Service of the name": {
			super:  reservedService(now.Add(-reservationGrace-time.Second), func(s *corev1.Service) { s.Annotations[ownership.AnnotationTenantUID] = "uid-earlier" }),
			tenant: []object{tenantDefaultNS, tenantWithSuperIP}, wantWrites: []string{"delete services demo-5c9a8459-default/web"}, wantUID: "-",
		},
		"kept within the grace period while the tenant Service has other IPs": {
			super: reservedService(now, nil), tenant: []object{tenantDefaultNS, tenantService(nil)}, wantUID: "",
		},
		"replaced after the grace period for a tenant Service with other IPs": {
			super: reservedService(now.Add(-reservationGrace-time.Second), nil), tenant: []object{tenantDefaultNS, tenantService(nil)},
			wantWrites: []string{"delete services demo-5c9a8459-default/web"}, wantUID: "-",
		},
		"kept within the grace period without a tenant Service": {
			super: reservedService(now, nil), tenant: []object{tenantDefaultNS}, wantUID: "",
		},
		"deleted after the grace period without a tenant Service": {
			super: reservedService(now.Add(-reservationGrace-time.Second), nil), tenant: []object{tenantDefaultNS},
			wantWrites: []string{"delete services demo-5c9a8459-default/web"}, wantUID: "-",
		},
		"another tenant's reservation is never adopted": {
			super:  reservedService(now, func(s *corev1.Service) { s.Labels[ownership.LabelClusterKey] = "other-00000000" }),
			tenant: []object{tenantDefaultNS, tenantWithSuperIP}, wantUID: "-",
		},
		"another tenant namespace's expired reservation is never deleted": {
			super:  reservedService(now.Add(-time.Hour), func(s *corev1.Service) { s.Labels[ownership.LabelTenantNamespace] = "other" }),
			tenant: []object{tenantDefaultNS}, wantUID: "-",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []object{superDefaultNS, tc.super}, tc.tenant)
			if err := h.s.syncService(testContext(t), h.t, "default", "web"); err != nil {
				t.Fatalf("syncService: %v", err)
			}
			if diff := cmp.Diff(tc.wantWrites, writes(h.super)); diff != "" {
				t.Errorf("super writes (-want +got):\n%s", diff)
			}
			if tc.wantUID == "-" {
				return
			}
			got, err := h.super.CoreV1().Services(testSuperNS).Get(t.Context(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if uid := got.Annotations[ownership.AnnotationTenantUID]; uid != tc.wantUID {
				t.Errorf("tenant UID = %q, want %q", uid, tc.wantUID)
			}
			if _, reserved := got.Annotations[serviceip.AnnotationReservedAt]; reserved != (len(tc.wantWrites) == 0) {
				t.Errorf("reservation annotation present = %v, want %v", reserved, len(tc.wantWrites) == 0)
			}
			if diff := cmp.Diff([]string{superIP}, got.Spec.ClusterIPs); diff != "" {
				t.Errorf("cluster IPs changed (-want +got):\n%s", diff)
			}
		})
	}
}
