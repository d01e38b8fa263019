package v1alpha1

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// crdFile is the CRD controller-gen writes from this package (make manifests).
var crdFile = filepath.Join("..", "..", "manifests", "crd", "tenancy.vnest.dev_virtualclusters.yaml")

func loadCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	b, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatalf("Reading the generated CRD (run make manifests): %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		t.Fatalf("Decoding %s: %v", crdFile, err)
	}
	return crd
}

func TestCRDShape(t *testing.T) {
	crd := loadCRD(t)
	if got, want := crd.Name, "virtualclusters."+GroupVersion.Group; got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
	if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
		t.Errorf("scope = %q, want Namespaced", crd.Spec.Scope)
	}
	if diff := cmp.Diff([]string{"vc"}, crd.Spec.Names.ShortNames); diff != "" {
		t.Errorf("short names (-want +got):\n%s", diff)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != GroupVersion.Version {
		t.Fatalf("versions = %+v, want exactly %s", crd.Spec.Versions, GroupVersion.Version)
	}
	v := crd.Spec.Versions[0]
	if !v.Served || !v.Storage {
		t.Errorf("version %s: served=%v storage=%v, want both", v.Name, v.Served, v.Storage)
	}
	if v.Subresources == nil || v.Subresources.Status == nil {
		t.Errorf("status subresource missing")
	}

	type column struct {
		Name, Type, JSONPath string
		Priority             int32
	}
	var gotColumns []column
	for _, c := range v.AdditionalPrinterColumns {
		gotColumns = append(gotColumns, column{c.Name, c.Type, c.JSONPath, c.Priority})
	}
	wantColumns := []column{
		{"Phase", "string", ".status.phase", 0},
		{"Provisioner", "string", ".spec.controlPlane.provisioner", 0},
		{"Endpoint", "string", ".status.endpoint", 0},
		{"Syncing", "string", `.status.conditions[?(@.type=="Syncing")].status`, 1},
		{"Age", "date", ".metadata.creationTimestamp", 0},
	}
	if diff := cmp.Diff(wantColumns, gotColumns); diff != "" {
		t.Errorf("printer columns (-want +got):\n%s", diff)
	}
}

// TestCRDValidationRules lists every CEL rule of the CRD by schema path, so a
// rule lost or changed by a marker edit shows up here.
func TestCRDValidationRules(t *testing.T) {
	crd := loadCRD(t)
	got := map[string][]string{}
	collectRules(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, "", got)

	const immutable = "self == oldSelf"
	want := map[string][]string{
		"": {
			fmt.Sprintf("self.metadata.name.size() <= %d", MaxNameLength),
			"self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
		},
		"spec.storage": {immutable},
		"spec.storage.etcd.credentialsSecretRef.name": {
			"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
		},
		"spec.storage.etcd.endpoints[*]": {
			"(self.startsWith('https://') && self.size() > 8) || (self.startsWith('http://') && self.size() > 7)",
		},
		"spec.controlPlane.provisioner": {immutable},
		"spec.controlPlane.resources": {
			"['cpu', 'memory'].all(r, (!has(self.limits) || !(r in self.limits) || !quantity(string(self.limits[r])).isLessThan(quantity('0'))) && " +
				"(!has(self.requests) || !(r in self.requests) || !quantity(string(self.requests[r])).isLessThan(quantity('0'))))",
			"!has(self.limits) || !has(self.requests) || ['cpu', 'memory'].all(r, !(r in self.limits) || !(r in self.requests) || " +
				"!quantity(string(self.requests[r])).isGreaterThan(quantity(string(self.limits[r]))))",
		},
		"spec.controlPlane.expose.extraSANs[*]": {
			"isIP(self) || self.matches('^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
		},
		"spec.clusterDomain": {
			"self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')",
			immutable,
		},
		"status.clusterKey": {immutable},
		"status.etcdPrefix": {immutable},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CEL rules by schema path (-want +got):\n%s", diff)
	}
}

// collectRules records the x-kubernetes-validations rules of s and its
// descendants under their dotted path ("[*]" for list items and map values).
// A rule without a message is recorded with a marker so the diff shows it:
// the default message ("failed rule: ...") tells a user nothing.
func collectRules(s *apiextensionsv1.JSONSchemaProps, path string, into map[string][]string) {
	if s == nil {
		return
	}
	for _, r := range s.XValidations {
		rule := strings.Join(strings.Fields(r.Rule), " ")
		if r.Message == "" && r.MessageExpression == "" {
			rule += " (NO MESSAGE)"
		}
		into[path] = append(into[path], rule)
	}
	for name, p := range s.Properties {
		child := name
		if path != "" {
			child = path + "." + name
		}
		collectRules(&p, child, into)
	}
	if s.Items != nil {
		collectRules(s.Items.Schema, path+"[*]", into)
	}
	if s.AdditionalProperties != nil {
		collectRules(s.AdditionalProperties.Schema, path+"[*]", into)
	}
}
