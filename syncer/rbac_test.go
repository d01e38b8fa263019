package syncer

import (
	"os"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// TestClusterRoleCoversTheInformers: the syncer's ClusterRole (manifests/syncer) lets it list and
// watch every super resource its informers read and write (create, update, delete) the kinds it
// syncs down, and lets it do no more than read the rest (nodes, events, volumes, published
// classes). The resources come from the informers themselves, so a kind added without its rule
// fails here rather than in a cluster.
func TestClusterRoleCoversTheInformers(t *testing.T) {
	data, err := os.ReadFile("../manifests/syncer/clusterrole.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatal(err)
	}
	allows := func(gr schema.GroupResource, verb string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, gr.Group) && slices.Contains(r.Resources, gr.Resource) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}

	cs := fake.NewClientset()
	s := newSyncer(cs, newMetrics(nil))
	// resourcesOf starts factories and returns the resources they list.
	resourcesOf := func(fs ...informers.SharedInformerFactory) map[schema.GroupResource]bool {
		cs.ClearActions()
		stop := make(chan struct{})
		defer close(stop)
		for _, f := range fs {
			f.Start(stop)
			f.WaitForCacheSync(stop)
		}
		out := map[schema.GroupResource]bool{}
		for _, a := range cs.Actions() {
			out[a.GetResource().GroupResource()] = true
		}
		return out
	}
	down := resourcesOf(s.superFactory)
	readOnly := resourcesOf(s.nodeFactory, s.published)
	if len(down) != len(syncedKindInformers(s.superFactory)) {
		t.Fatalf("the super factory read %v; want one resource per synced kind", down)
	}
	for gr := range down {
		for _, verb := range []string{"get", "list", "watch", "create", "update", "delete"} {
			if !allows(gr, verb) {
				t.Errorf("the ClusterRole does not allow %s %s", verb, gr)
			}
		}
	}
	for gr := range readOnly {
		for _, verb := range []string{"list", "watch"} {
			if !allows(gr, verb) {
				t.Errorf("the ClusterRole does not allow %s %s", verb, gr)
			}
		}
		for _, verb := range []string{"create", "update", "patch", "delete", "deletecollection"} {
			if allows(gr, verb) && !down[gr] {
				t.Errorf("the ClusterRole allows %s %s, which the syncer only reads", verb, gr)
			}
		}
	}
}
