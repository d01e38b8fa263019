package syncer

import (
	"context"
	"net/http"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/vnest-dev/vnest/internal/testreviewer"
)

// TestClusterRoleCoversTheInformers: the syncer's ClusterRole (manifests/syncer) lets it list and
// watch every super resource its informers read and write (create, update, delete) the kinds it
// syncs down, and lets it do no more than read the rest (nodes, events, volumes, published
// classes). The resources come from the informers (and the super event cache's reflector)
// themselves, so a kind added without its rule fails here rather than in a cluster.
func TestClusterRoleCoversTheInformers(t *testing.T) {
	var role rbacv1.ClusterRole
	readManifest(t, "../manifests/syncer/clusterrole.yaml", &role)
	allows := func(gr schema.GroupResource, verb string) bool { return rulesAllow(role.Rules, gr, verb, "") }

	cs := fake.NewClientset()
	s := newSyncer(cs, newMetrics(nil))
	// resourcesOf starts factories (and the super event cache with events) and returns the
	// resources they list.
	resourcesOf := func(events bool, fs ...informers.SharedInformerFactory) map[schema.GroupResource]bool {
		cs.ClearActions()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		for _, f := range fs {
			f.Start(ctx.Done())
			f.WaitForCacheSync(ctx.Done())
		}
		if events {
			go s.eventCache.run(ctx)
			cache.WaitForCacheSync(ctx.Done(), s.eventCache.hasSynced)
		}
		out := map[schema.GroupResource]bool{}
		for _, a := range cs.Actions() {
			out[a.GetResource().GroupResource()] = true
		}
		return out
	}
	down := resourcesOf(false, s.superFactory)
	readOnly := resourcesOf(true, s.nodeFactory, s.published)
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

// TestRoleCoversTheLease: the syncer's Role (manifests/syncer/role.yaml), bound to its service
// account, lets it do what its heartbeat does to its Lease (create it, then read and update it)
// and nothing more: reads and updates of that Lease only, no other resource. The requests come
// from the heartbeat itself, against a fake super cluster.
func TestRoleCoversTheLease(t *testing.T) {
	var role rbacv1.Role
	readManifest(t, "../manifests/syncer/role.yaml", &role)
	var binding rbacv1.RoleBinding
	readManifest(t, "../manifests/syncer/rolebinding.yaml", &binding)
	if binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 ||
		binding.Subjects[0].Kind != rbacv1.ServiceAccountKind || binding.Subjects[0].Name != "vnest-syncer" {
		t.Errorf("the RoleBinding binds %+v to %+v; want the Role %s to the service account vnest-syncer", binding.RoleRef, binding.Subjects, role.Name)
	}

	cs := fake.NewClientset()
	now := time.Now()
	h := testHeartbeat(cs, &now) // lease_test.go
	h.name = NewOptions().LeaseName
	for range 2 { // creates, then reads and updates
		if err := h.renew(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var verbs []string
	for _, a := range cs.Actions() {
		verbs = append(verbs, a.GetVerb())
	}
	if want := []string{"get", "create", "get", "update"}; !slices.Equal(verbs, want) {
		t.Fatalf("the heartbeat's requests: %q, want %q", verbs, want)
	}
	for _, a := range cs.Actions() {
		name := actionName(a)
		if !rulesAllow(role.Rules, a.GetResource().GroupResource(), a.GetVerb(), name) {
			t.Errorf("the Role does not allow %s %s %q, which the heartbeat does", a.GetVerb(), a.GetResource().GroupResource(), name)
		}
	}
	lease := schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	for _, verb := range []string{"get", "update", "patch", "delete"} {
		if rulesAllow(role.Rules, lease, verb, "kube-scheduler") {
			t.Errorf("the Role allows %s of any Lease; want only the syncer's", verb)
		}
	}
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{lease.Group}) || !slices.Equal(r.Resources, []string{lease.Resource}) {
			t.Errorf("the Role has a rule for %v %v; want leases only", r.APIGroups, r.Resources)
		}
	}
}

// TestClusterRoleCoversTheMetricsReviews: the syncer's ClusterRole lets it create what
// --metrics-secure asks the super cluster for each scrape (TokenReviews, SubjectAccessReviews),
// and vnest-syncer-metrics-reader, installed with it, lets its subjects get /metrics and
// nothing else. The requests come from the metrics server itself, against a fake super cluster.
func TestClusterRoleCoversTheMetricsReviews(t *testing.T) {
	var role, reader rbacv1.ClusterRole
	readManifest(t, "../manifests/syncer/clusterrole.yaml", &role)
	readManifest(t, "../manifests/syncer/metrics-reader.yaml", &reader)

	super := startReviewer(t) // metricsserve_test.go
	o := NewOptions()
	o.MetricsBindAddress, o.MetricsSecure = "127.0.0.1:0", true
	addr := startMetrics(t, o, super.Config())
	if code, body := testreviewer.Get(t, testreviewer.SelfSignedClient, "https://"+addr+"/metrics", "prometheus"); code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %q, want 200", code, body)
	}
	if len(super.Asked()) != 2 {
		t.Errorf("a scrape asked the super cluster for %v; want a TokenReview and a SubjectAccessReview", super.Asked())
	}
	for _, gr := range super.Asked() {
		if !rulesAllow(role.Rules, gr, "create", "") {
			t.Errorf("the ClusterRole does not allow create %s, which the metrics server does", gr)
		}
	}

	want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
	if reader.Name != "vnest-syncer-metrics-reader" || !reflect.DeepEqual(reader.Rules, want) {
		t.Errorf("ClusterRole %s has rules %+v; want vnest-syncer-metrics-reader with %+v", reader.Name, reader.Rules, want)
	}
	var kustomization struct {
		metav1.TypeMeta `json:",inline"`
		Namespace       string   `json:"namespace"`
		Resources       []string `json:"resources"`
	}
	readManifest(t, "../manifests/syncer/kustomization.yaml", &kustomization)
	if !slices.Contains(kustomization.Resources, "metrics-reader.yaml") {
		t.Errorf("manifests/syncer/kustomization.yaml installs %q; want metrics-reader.yaml too", kustomization.Resources)
	}
}

// actionName is the object name the apiserver authorizes a request with: none for a create (a
// POST to the collection), whatever the object's.
func actionName(a clienttesting.Action) string {
	switch a := a.(type) {
	case clienttesting.GetAction:
		return a.GetName()
	case clienttesting.UpdateAction:
		if m, err := meta.Accessor(a.GetObject()); err == nil && a.GetVerb() == "update" {
			return m.GetName()
		}
	}
	return ""
}

// rulesAllow reports whether rules allow verb on gr's object name ("" for a create or a list),
// as RBAC decides: a rule with resourceNames matches only those names.
func rulesAllow(rules []rbacv1.PolicyRule, gr schema.GroupResource, verb, name string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, gr.Group) && slices.Contains(r.Resources, gr.Resource) && slices.Contains(r.Verbs, verb) &&
			(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}

// readManifest decodes the YAML file at path into obj, strictly.
func readManifest(t *testing.T, path string, obj any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
