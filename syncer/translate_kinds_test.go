package syncer

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	apiservice "k8s.io/kubernetes/pkg/api/service"
	"k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/kubernetes/pkg/apis/discovery"
	_ "k8s.io/kubernetes/pkg/apis/discovery/install"
	discoveryvalidation "k8s.io/kubernetes/pkg/apis/discovery/validation"
	"k8s.io/kubernetes/pkg/apis/networking"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	networkingvalidation "k8s.io/kubernetes/pkg/apis/networking/validation"
	"k8s.io/kubernetes/pkg/apis/node"
	_ "k8s.io/kubernetes/pkg/apis/node/install"
	nodevalidation "k8s.io/kubernetes/pkg/apis/node/validation"
	"k8s.io/kubernetes/pkg/apis/policy"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	policyvalidation "k8s.io/kubernetes/pkg/apis/policy/validation"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// TestTranslatedObjectsPassValidation: for every kind synced down, tenant objects at the limits
// upstream validation sets (a 63-character namespace, 253-character names where the kind takes
// them, 63-character label values, forged reserved keys, 128 KiB of annotations) and with the
// spec fields a tenant may set in odd ways, which upstream validation accepts in the tenant
// namespace, give super objects it accepts in the super namespace, without the forged keys.
func TestTranslatedObjectsPassValidation(t *testing.T) {
	ns63 := strings.Repeat("n", 63)
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns63, Name: name, UID: "uid-x",
			Labels: map[string]string{"app": strings.Repeat("v", 63), "tenancy.vnest.dev/cluster-key": "forged",
				"x.tenancy.vnest.dev/tenant-namespace": "kube-system"},
			Annotations: map[string]string{"example.com/big": strings.Repeat("a", 128<<10), "tenancy.vnest.dev/tenant-uid": "forged",
				"tenancy.vnest.dev/refused-tolerations": "forged"}}
	}
	clusterScoped := func(name string) metav1.ObjectMeta {
		m := meta(name)
		m.Namespace = ""
		return m
	}
	name253, name63 := strings.Repeat("o", 253), strings.Repeat("s", 63)
	owner := testOwner
	namespaces := []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: ns63, Labels: map[string]string{"team": "a"}}}}
	nameSelector := func(op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: labelNamespaceName, Operator: op, Values: values}}}
	}
	policy := func(peers ...networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: meta(name253), Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: peers}}, Egress: []networkingv1.NetworkPolicyEgressRule{{To: peers}}}}
	}
	service := func(mutate func(*corev1.ServiceSpec)) *corev1.Service {
		svc := &corev1.Service{ObjectMeta: meta(name63), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"tenancy.vnest.dev/cluster-key": "x"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")}}}}
		mutate(&svc.Spec)
		return svc
	}
	for _, tc := range []struct {
		name      string
		tenant    runtime.Object
		translate func(runtime.Object) runtime.Object
	}{
		{name: "ConfigMap", tenant: &corev1.ConfigMap{ObjectMeta: meta(name253), Data: map[string]string{"k": "v"}, Immutable: ptr.To(true)},
			translate: func(o runtime.Object) runtime.Object { return translateConfigMap(o.(*corev1.ConfigMap), owner) }},
		{name: "Secret", tenant: &corev1.Secret{ObjectMeta: meta(name253), Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{}")}},
			translate: func(o runtime.Object) runtime.Object { return translateSecret(o.(*corev1.Secret), owner) }},
		{name: "Service, ClusterIP with a named target port", tenant: service(func(*corev1.ServiceSpec) {}),
			translate: func(o runtime.Object) runtime.Object { return translateService(o.(*corev1.Service), owner) }},
		{name: "Service, LoadBalancer without node ports, with source ranges", tenant: service(func(s *corev1.ServiceSpec) {
			s.Type, s.AllocateLoadBalancerNodePorts, s.LoadBalancerSourceRanges = corev1.ServiceTypeLoadBalancer, ptr.To(false), []string{"192.0.2.0/24"}
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.HealthCheckNodePort = 30100
		}), translate: func(o runtime.Object) runtime.Object { return translateService(o.(*corev1.Service), owner) }},
		{name: "Service, headless", tenant: service(func(s *corev1.ServiceSpec) {
			s.ClusterIP, s.ClusterIPs, s.PublishNotReadyAddresses = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}, true
		}), translate: func(o runtime.Object) runtime.Object { return translateService(o.(*corev1.Service), owner) }},
		{name: "Service, ExternalName", tenant: service(func(s *corev1.ServiceSpec) {
			s.Type, s.ExternalName, s.Selector = corev1.ServiceTypeExternalName, "db.example.com", nil
		}), translate: func(o runtime.Object) runtime.Object { return translateService(o.(*corev1.Service), owner) }},
		{name: "Endpoints", tenant: &corev1.Endpoints{ObjectMeta: meta(name253), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1", Hostname: name63, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns63, Name: name253}}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}},
			translate: func(o runtime.Object) runtime.Object { return translateEndpoints(o.(*corev1.Endpoints), owner) }},
		{name: "EndpointSlice", tenant: &discoveryv1.EndpointSlice{ObjectMeta: meta(name253), AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Hostname: ptr.To(name63),
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns63, Name: name253, UID: "uid-pod"}}},
			Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](80), Protocol: ptr.To(corev1.ProtocolTCP)}}},
			translate: func(o runtime.Object) runtime.Object {
				return translateEndpointSlice(o.(*discoveryv1.EndpointSlice), owner)
			}},
		{name: "PersistentVolumeClaim", tenant: &corev1.PersistentVolumeClaim{ObjectMeta: meta(name253), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeName: name253, StorageClassName: ptr.To(name253),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}},
			translate: func(o runtime.Object) runtime.Object { return translatePVC(o.(*corev1.PersistentVolumeClaim), owner) }},
		{name: "PodDisruptionBudget", tenant: &policyv1.PodDisruptionBudget{ObjectMeta: meta(name253), Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromString("10%")), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenancy.vnest.dev/tenant-namespace": "x"}}}},
			translate: func(o runtime.Object) runtime.Object { return translatePDB(o.(*policyv1.PodDisruptionBudget), owner) }},
		{name: "Ingress", tenant: &networkingv1.Ingress{ObjectMeta: meta(name253), Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(name253), TLS: []networkingv1.IngressTLS{{Hosts: []string{"*.example.com"}, SecretName: name253}},
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name63, Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
			translate: func(o runtime.Object) runtime.Object { return translateIngress(o.(*networkingv1.Ingress), owner) }},
		{name: "NetworkPolicy, name selectors with values no namespace has", tenant: policy(
			networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelNamespaceName: "Not_A.Namespace-" + strings.Repeat("x", 46)}}},
			networkingv1.NetworkPolicyPeer{NamespaceSelector: nameSelector(metav1.LabelSelectorOpNotIn, ns63, "a.b", "Z")},
			networkingv1.NetworkPolicyPeer{NamespaceSelector: nameSelector(metav1.LabelSelectorOpExists)},
			networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: &metav1.LabelSelector{}}),
			translate: func(o runtime.Object) runtime.Object {
				return translateNetworkPolicy(o.(*networkingv1.NetworkPolicy), owner, namespaces)
			}},
		{name: "NetworkPolicy, label selectors", tenant: policy(
			networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}},
			networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "none"}}},
			networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenancy.vnest.dev/cluster-key": "other-00000000"}}}),
			translate: func(o runtime.Object) runtime.Object {
				return translateNetworkPolicy(o.(*networkingv1.NetworkPolicy), owner, namespaces)
			}},
		{name: "RuntimeClass", tenant: &nodev1.RuntimeClass{ObjectMeta: clusterScoped(name253), Handler: name63},
			translate: func(o runtime.Object) runtime.Object { return translateRuntimeClass(o.(*nodev1.RuntimeClass), owner) }},
		{name: "Namespace", tenant: &corev1.Namespace{ObjectMeta: clusterScoped(ns63)}, translate: func(o runtime.Object) runtime.Object {
			return translateNamespace(o.(*corev1.Namespace), owner, v1alpha1.PolicySpec{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if errs := validateCreate(t, tc.tenant); len(errs) > 0 {
				t.Fatalf("the tenant object is invalid: %v", errs.ToAggregate())
			}
			super := tc.translate(tc.tenant.DeepCopyObject())
			if errs := validateCreate(t, super); len(errs) > 0 {
				t.Errorf("the super cluster would refuse the super object of a valid tenant object: %v", errs.ToAggregate())
			}
			m := super.(metav1.Object)
			for _, kv := range []map[string]string{m.GetLabels(), m.GetAnnotations()} {
				for k, v := range kv {
					if strings.Contains(k, "tenancy.vnest.dev/") && (v == "forged" || v == "kube-system") {
						t.Errorf("the tenant's reserved key %s=%s reached the super object", k, v)
					}
				}
			}
			if ns := m.GetNamespace(); ns != "" && ns != mapping.SuperNamespace(testKey, ns63) {
				t.Errorf("super object in %q, want %q", ns, mapping.SuperNamespace(testKey, ns63))
			}
		})
	}
}

// validateCreate is upstream's validation of the create of obj (an object of a kind the syncer
// writes), defaulted and converted to the internal type first, as an apiserver does.
func validateCreate(t *testing.T, obj runtime.Object) field.ErrorList {
	t.Helper()
	obj = obj.DeepCopyObject()
	legacyscheme.Scheme.Default(obj)
	internal, err := legacyscheme.Scheme.ConvertToVersion(obj, runtime.InternalGroupVersioner)
	if err != nil {
		t.Fatal(err)
	}
	// The Service registry allocates a health check node port before it validates (BeginCreate).
	if svc, ok := internal.(*core.Service); ok && svc.Spec.HealthCheckNodePort == 0 && apiservice.NeedsHealthCheck(svc) {
		svc.Spec.HealthCheckNodePort = 30999
	}
	// What every create goes through (rest.BeforeCreate), then the kind's own validation.
	m := internal.(metav1.Object)
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(m, m.GetNamespace() != "", path.ValidatePathSegmentName, field.NewPath("metadata"))
	return append(errs, validateKind(t, internal)...)
}

// validateKind is upstream's validation of the create of internal, an object of a kind the
// syncer writes, in its internal type.
func validateKind(t *testing.T, internal runtime.Object) field.ErrorList {
	t.Helper()
	switch o := internal.(type) {
	case *core.ConfigMap:
		return corevalidation.ValidateConfigMap(o)
	case *core.Secret:
		return corevalidation.ValidateSecret(o)
	case *core.Service:
		return corevalidation.ValidateServiceCreate(o)
	case *core.Endpoints:
		return corevalidation.ValidateEndpointsCreate(o)
	case *core.PersistentVolumeClaim:
		return corevalidation.ValidatePersistentVolumeClaim(o, corevalidation.PersistentVolumeClaimSpecValidationOptions{})
	case *core.Namespace:
		return corevalidation.ValidateNamespace(o)
	case *discovery.EndpointSlice:
		return discoveryvalidation.ValidateEndpointSliceCreate(o)
	case *networking.NetworkPolicy:
		return networkingvalidation.ValidateNetworkPolicy(o, networkingvalidation.NetworkPolicyValidationOptions{})
	case *networking.Ingress:
		return networkingvalidation.ValidateIngressCreate(o)
	case *policy.PodDisruptionBudget:
		return policyvalidation.ValidatePodDisruptionBudget(o, policyvalidation.PodDisruptionBudgetValidationOptions{})
	case *node.RuntimeClass:
		return nodevalidation.ValidateRuntimeClass(o)
	}
	t.Fatalf("no validation for %T", internal)
	return nil
}
