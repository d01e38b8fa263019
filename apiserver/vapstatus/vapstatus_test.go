package vapstatus

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestDefinitionsBuiltOnFirstUse: nothing is built until a schema is asked for, then once; the
// resolver answers built-in kinds from upstream's definitions, as kube-controller-manager's does.
func TestDefinitionsBuiltOnFirstUse(t *testing.T) {
	builds := 0
	r := &lazyResolver{build: func() resolver.SchemaResolver {
		builds++
		return schemaResolver(&fake.FakeDiscovery{Fake: &k8stesting.Fake{}}).(*lazyResolver).build()
	}}
	if builds != 0 {
		t.Fatalf("built %d times before any use", builds)
	}
	deployment := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	for range 2 {
		s, err := r.ResolveSchema(deployment)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Properties["spec"].Properties["replicas"]; !ok {
			t.Errorf("the Deployment schema has no spec.replicas: %v", s.Properties["spec"].Properties)
		}
	}
	if builds != 1 {
		t.Errorf("built %d times for two uses, want 1", builds)
	}
}
