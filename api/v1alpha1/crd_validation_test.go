package v1alpha1

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// crdValidator runs, without an apiserver, the same steps the apiserver runs
// on a VirtualCluster write: structural defaulting, OpenAPI schema validation
// and the CEL rules (with oldSelf on updates).
type crdValidator struct {
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

func newCRDValidator(t *testing.T) *crdValidator {
	t.Helper()
	var crd apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(loadCRD(t), &crd, nil); err != nil {
		t.Fatalf("Converting the CRD: %v", err)
	}
	// The apiserver sets storedVersions; everything else must pass as generated.
	crd.Status.StoredVersions = []string{GroupVersion.Version}
	if errs := crdvalidation.ValidateCustomResourceDefinition(t.Context(), &crd); len(errs) > 0 {
		t.Fatalf("The apiserver would reject the CRD: %v", errs.ToAggregate())
	}
	props := crd.Spec.Validation.OpenAPIV3Schema // one version: the schema is hoisted
	structural, err := structuralschema.NewStructural(props)
	if err != nil {
		t.Fatalf("Structural schema: %v", err)
	}
	schemaValidator, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		t.Fatalf("Schema validator: %v", err)
	}
	return &crdValidator{structural, schemaValidator, cel.NewValidator(structural, true, celconfig.PerCallLimit)}
}

// validate defaults obj (and old) in place and returns one "field: detail"
// line per error; old is nil on create.
func (v *crdValidator) validate(t *testing.T, obj, old map[string]any) []string {
	t.Helper()
	defaulting.Default(obj, v.structural)
	var errs field.ErrorList
	var oldObj any
	if old == nil {
		errs = apiservervalidation.ValidateCustomResource(nil, obj, v.schema)
	} else {
		defaulting.Default(old, v.structural)
		errs = apiservervalidation.ValidateCustomResourceUpdate(nil, obj, old, v.schema)
		oldObj = old
	}
	celErrs, _ := v.cel.Validate(t.Context(), nil, v.structural, obj, oldObj, celconfig.RuntimeCELCostBudget)
	var got []string
	for _, e := range append(errs, celErrs...) {
		detail := e.Detail
		if detail == "" {
			detail = string(e.Type)
		}
		got = append(got, e.Field+": "+detail)
	}
	return got
}

// vcObject is a VirtualCluster as the apiserver sees it before defaulting.
func vcObject(t *testing.T, name string, spec *VirtualClusterSpec, status *VirtualClusterStatus) map[string]any {
	t.Helper()
	vc := &VirtualCluster{}
	vc.APIVersion, vc.Kind = GroupVersion.String(), "VirtualCluster"
	vc.Name, vc.Namespace = name, "default"
	if spec != nil {
		vc.Spec = *spec
	}
	if status != nil {
		vc.Status = *status
	}
	b, err := json.Marshal(vc)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	delete(obj["metadata"].(map[string]any), "creationTimestamp")
	return obj
}

func etcdSpec(endpoints ...string) *VirtualClusterSpec {
	return &VirtualClusterSpec{Storage: &StorageSpec{Etcd: &EtcdStorage{
		Endpoints:            endpoints,
		CredentialsSecretRef: SecretReference{Name: "etcd-client"},
	}}}
}

// resourcesSpec is a spec with the control-plane requests and limits given.
func resourcesSpec(requests, limits corev1.ResourceList) *VirtualClusterSpec {
	return &VirtualClusterSpec{ControlPlane: &ControlPlaneSpec{Resources: &corev1.ResourceRequirements{Requests: requests, Limits: limits}}}
}

// list is a ResourceList of name, quantity pairs.
func list(pairs ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(pairs); i += 2 {
		l[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return l
}

func TestCRDDefaults(t *testing.T) {
	v := newCRDValidator(t)
	obj := vcObject(t, "demo", nil, nil)
	if errs := v.validate(t, obj, nil); len(errs) > 0 {
		t.Fatalf("An empty VirtualCluster is rejected: %v", errs)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var got VirtualCluster
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := VirtualClusterSpec{
		Storage: &StorageSpec{},
		ControlPlane: &ControlPlaneSpec{
			Provisioner: ProvisionerLocal,
			Expose:      &ExposeSpec{Type: ExposeClusterIP},
		},
		Sync:          &SyncSpec{SecretsAndConfigMaps: SyncScopeUsed},
		Policy:        &PolicySpec{PodSecurityLevel: PodSecurityBaseline},
		ClusterDomain: "cluster.local",
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("defaulted spec (-want +got):\n%s", diff)
	}
}

func TestCRDValidation(t *testing.T) {
	v := newCRDValidator(t)
	const (
		nameTooLong        = "<nil>: metadata.name must be at most 40 characters so the names vnest derives from it fit Kubernetes limits: choose a shorter name"
		nameNotLabel       = "<nil>: metadata.name must be a DNS label that starts with a letter (lowercase letters, digits and '-', no dots), e.g. team-a"
		badEndpoint        = "each etcd endpoint must be a URL that starts with https:// (or http://), e.g. https://etcd-0.etcd:2379"
		storageFixed       = "spec.storage: storage is immutable: create a new VirtualCluster to use different storage"
		resourcesNegative  = "controlPlane.resources: cpu and memory limits and requests must be zero or more"
		resourcesOverLimit = "controlPlane.resources: a cpu or memory request must not be more than its limit"
		secretName         = "name must be a Secret's name: a DNS subdomain of lowercase letters, digits, '-' and '.', e.g. etcd-client"
		domainLabels       = "clusterDomain must be a DNS subdomain of lowercase letters, digits, '-' and '.', each label at most 63 characters, e.g. cluster.local"
	)
	cases := map[string]struct {
		name           string
		spec, oldSpec  *VirtualClusterSpec
		rawSpec        map[string]any // as a user would write it, instead of spec
		status, oldSts *VirtualClusterStatus
		update         bool
		want           []string
	}{
		"minimal":                    {name: "demo"},
		"40-character name":          {name: strings.Repeat("a", 40)},
		"41-character name":          {name: strings.Repeat("a", 41), want: []string{nameTooLong}},
		"dotted name":                {name: "team.a", want: []string{nameNotLabel}},
		"name starting with a digit": {name: "1team", want: []string{nameNotLabel}},
		"full spec": {name: "demo", spec: &VirtualClusterSpec{
			Storage:       etcdSpec("https://etcd-0.etcd:2379", "http://10.0.0.1:2379").Storage,
			ControlPlane:  &ControlPlaneSpec{Provisioner: ProvisionerCluster, Expose: &ExposeSpec{Type: ExposeNodePort, ExtraSANs: []string{"vc.example.com", "*.vc.example.com", "10.1.2.3", "fd00::1"}}},
			Sync:          &SyncSpec{Kinds: []SyncKind{SyncKindIngress, SyncKindNetworkPolicy, SyncKindPodDisruptionBudget}, SecretsAndConfigMaps: SyncScopeAll},
			Policy:        &PolicySpec{PodSecurityLevel: PodSecurityRestricted, NodeSelector: map[string]string{"pool": "tenants"}},
			ClusterDomain: "tenant.example",
		}},
		"unknown provisioner": {name: "demo",
			spec: &VirtualClusterSpec{ControlPlane: &ControlPlaneSpec{Provisioner: "docker"}},
			want: []string{`spec.controlPlane.provisioner: supported values: "local", "cluster"`}},
		"etcd endpoints without a scheme": {name: "demo",
			spec: etcdSpec("https://etcd-0.etcd:2379", "etcd-1.etcd:2379", "https://"),
			want: []string{"spec.storage.etcd.endpoints[1]: " + badEndpoint, "spec.storage.etcd.endpoints[2]: " + badEndpoint}},
		"etcd without endpoints or credentials": {name: "demo",
			rawSpec: map[string]any{"storage": map[string]any{"etcd": map[string]any{}}},
			want:    []string{"spec.storage.etcd.credentialsSecretRef: FieldValueRequired", "spec.storage.etcd.endpoints: FieldValueRequired"}},
		"credentials Secret names that no Secret can have": {name: "demo",
			rawSpec: map[string]any{"storage": map[string]any{"etcd": map[string]any{"endpoints": []any{"https://etcd:2379"}, "credentialsSecretRef": map[string]any{"name": "etcd/creds"}}}},
			want:    []string{"spec.storage.etcd.credentialsSecretRef.name: " + secretName}},
		"uppercase credentials Secret name": {name: "demo",
			rawSpec: map[string]any{"storage": map[string]any{"etcd": map[string]any{"endpoints": []any{"https://etcd:2379"}, "credentialsSecretRef": map[string]any{"name": "Etcd_Creds"}}}},
			want:    []string{"spec.storage.etcd.credentialsSecretRef.name: " + secretName}},
		"dotted credentials Secret name": {name: "demo",
			rawSpec: map[string]any{"storage": map[string]any{"etcd": map[string]any{"endpoints": []any{"https://etcd:2379"}, "credentialsSecretRef": map[string]any{"name": "etcd.creds-2"}}}}},
		"etcd with an empty endpoint list": {name: "demo",
			rawSpec: map[string]any{"storage": map[string]any{"etcd": map[string]any{"endpoints": []any{}, "credentialsSecretRef": map[string]any{"name": "etcd-client"}}}},
			want:    []string{"spec.storage.etcd.endpoints: spec.storage.etcd.endpoints in body should have at least 1 items"}},
		"bad cluster domain": {name: "demo",
			spec: &VirtualClusterSpec{ClusterDomain: "Cluster_Local"},
			want: []string{"spec.clusterDomain: " + domainLabels}},
		"bad extra SAN": {name: "demo",
			spec: &VirtualClusterSpec{ControlPlane: &ControlPlaneSpec{Expose: &ExposeSpec{ExtraSANs: []string{"ok.example", "Not_A_Name"}}}},
			want: []string{"spec.controlPlane.expose.extraSANs[1]: each extraSAN must be an IP address or a lowercase DNS name (optionally starting with *.), e.g. vc.example.com"}},
		"cluster domain with a 64-character label": {name: "demo",
			spec: &VirtualClusterSpec{ClusterDomain: strings.Repeat("a", 64) + ".local"},
			want: []string{"spec.clusterDomain: " + domainLabels}},
		"cluster domain with 63-character labels": {name: "demo",
			spec: &VirtualClusterSpec{ClusterDomain: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".local"}},
		"cluster domain too long for kubernetes.default.svc": {name: "demo",
			spec: &VirtualClusterSpec{ClusterDomain: strings.Repeat(strings.Repeat("a", 56)+".", 4) + "abc"},
			want: []string{"spec.clusterDomain: may not be more than 230 bytes"}},
		"cluster domain at the length limit": {name: "demo",
			spec: &VirtualClusterSpec{ClusterDomain: strings.Repeat(strings.Repeat("a", 56)+".", 4) + "ab"}},
		"control-plane resources": {name: "demo",
			spec: resourcesSpec(list("cpu", "100m", "memory", "192Mi"), list("cpu", "2", "memory", "1Gi"))},
		"negative control-plane limits and requests": {name: "demo",
			spec: resourcesSpec(list("memory", "-1"), list("cpu", "-500m", "memory", "1Gi")),
			want: []string{"spec.controlPlane.resources: " + resourcesNegative}},
		"control-plane quantities written as numbers": {name: "demo",
			rawSpec: map[string]any{"controlPlane": map[string]any{"resources": map[string]any{
				"requests": map[string]any{"cpu": 3, "memory": 1024}, "limits": map[string]any{"cpu": 2, "memory": -1, "ephemeral-storage": -1}}}},
			want: []string{"spec.controlPlane.resources: " + resourcesNegative, "spec.controlPlane.resources: " + resourcesOverLimit}},
		"control-plane request over its limit": {name: "demo",
			spec: resourcesSpec(list("cpu", "2", "memory", "192Mi"), list("cpu", "1500m")),
			want: []string{"spec.controlPlane.resources: " + resourcesOverLimit}},
		"kind that is always synced": {name: "demo",
			spec: &VirtualClusterSpec{Sync: &SyncSpec{Kinds: []SyncKind{"Pod"}}},
			want: []string{`spec.sync.kinds[0]: supported values: "Ingress", "NetworkPolicy", "PodDisruptionBudget"`}},
		"bad pod security level": {name: "demo",
			spec: &VirtualClusterSpec{Policy: &PolicySpec{PodSecurityLevel: "strict"}},
			want: []string{`spec.policy.podSecurityLevel: supported values: "privileged", "baseline", "restricted"`}},

		"update: sync and policy may change": {name: "demo", update: true,
			spec: &VirtualClusterSpec{Sync: &SyncSpec{Kinds: []SyncKind{SyncKindIngress}}, Policy: &PolicySpec{PodSecurityLevel: PodSecurityRestricted}}},
		"update: embedded etcd to shared etcd": {name: "demo", update: true,
			spec: etcdSpec("https://etcd-0.etcd:2379"), want: []string{storageFixed}},
		"update: shared etcd to embedded etcd": {name: "demo", update: true,
			oldSpec: etcdSpec("https://etcd-0.etcd:2379"), want: []string{storageFixed}},
		"update: another etcd endpoint": {name: "demo", update: true,
			oldSpec: etcdSpec("https://etcd-0.etcd:2379"), spec: etcdSpec("https://etcd-0.etcd:2379", "https://etcd-1.etcd:2379"),
			want: []string{storageFixed}},
		"update: provisioner": {name: "demo", update: true,
			spec: &VirtualClusterSpec{ControlPlane: &ControlPlaneSpec{Provisioner: ProvisionerCluster}},
			want: []string{"spec.controlPlane.provisioner: controlPlane.provisioner is immutable: create a new VirtualCluster to use another provisioner"}},
		"update: cluster domain": {name: "demo", update: true,
			spec: &VirtualClusterSpec{ClusterDomain: "tenant.example"},
			want: []string{"spec.clusterDomain: clusterDomain is immutable: create a new VirtualCluster to use a different domain"}},
		"update: status keys set the first time": {name: "demo", update: true,
			status: &VirtualClusterStatus{ClusterKey: "demo-5c9a8459", EtcdPrefix: "/vnest/demo-5c9a8459"}},
		"update: status keys changed": {name: "demo", update: true,
			oldSts: &VirtualClusterStatus{ClusterKey: "demo-5c9a8459", EtcdPrefix: "/vnest/demo-5c9a8459"},
			status: &VirtualClusterStatus{ClusterKey: "demo-00000000", EtcdPrefix: "/vnest/demo-00000000"},
			want: []string{
				"status.clusterKey: status.clusterKey cannot change once set: the tenant's super-cluster objects are named and labelled from it",
				"status.etcdPrefix: status.etcdPrefix cannot change once set: the tenant's data lives under it",
			}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var old map[string]any
			if tc.update {
				old = vcObject(t, tc.name, tc.oldSpec, tc.oldSts)
			}
			obj := vcObject(t, tc.name, tc.spec, tc.status)
			if tc.rawSpec != nil {
				obj["spec"] = tc.rawSpec
			}
			got := v.validate(t, obj, old)
			// Errors from different fields come in no fixed order.
			slices.Sort(got)
			slices.Sort(tc.want)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
