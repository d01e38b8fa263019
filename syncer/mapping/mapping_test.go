package mapping

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vnest-dev/vnest/internal/ownership"
)

const key = "demo-5c9a8459"

var owner = Owner{ClusterKey: key, VirtualCluster: "default/demo"}

func TestSuperNamespace(t *testing.T) {
	long := strings.Repeat("a", 63)
	cases := map[string]struct {
		key, ns string
		want    string
	}{
		"short":             {key, "default", "demo-5c9a8459-default"},
		"exactly 63":        {key, strings.Repeat("n", 63-len(key)-1), key + "-" + strings.Repeat("n", 63-len(key)-1)},
		"one over":          {key, strings.Repeat("n", 63-len(key)), "demo-5c9a8459-nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn-fbc6669f29"},
		"longest tenant ns": {key, long, "demo-5c9a8459-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1cd76ccee0"},
		"no trailing dash":  {key, strings.Repeat("a", 37) + "-" + strings.Repeat("b", 20), "demo-5c9a8459-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-e86b315341"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := SuperNamespace(tc.key, tc.ns)
			if got != tc.want {
				t.Errorf("SuperNamespace(%q, %q) = %q, want %q", tc.key, tc.ns, got, tc.want)
			}
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Errorf("%q is not a namespace name: %v", got, errs)
			}
			if !strings.HasPrefix(got, ownership.NamespacePrefix(tc.key)) {
				t.Errorf("%q does not start with the tenant prefix", got)
			}
			if again := SuperNamespace(tc.key, tc.ns); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
	// Two long names that share the readable prefix must not collide.
	a, b := SuperNamespace(key, long+"x"), SuperNamespace(key, long+"y")
	if a == b {
		t.Errorf("long namespaces collide: %q", a)
	}
}

func TestTenantNamespace(t *testing.T) {
	meta := func(name string, labels map[string]string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Name: name, Labels: labels}
	}
	cases := map[string]struct {
		obj    *metav1.ObjectMeta
		wantNS string
		wantOK bool
	}{
		"owned":                      {meta("demo-5c9a8459-default", map[string]string{ownership.LabelClusterKey: key, ownership.LabelTenantNamespace: "default"}), "default", true},
		"truncated name, label wins": {meta("demo-5c9a8459-aaaa-08c8db9c61", map[string]string{ownership.LabelClusterKey: key, ownership.LabelTenantNamespace: "a-very-long-one"}), "a-very-long-one", true},
		"name alone proves nothing":  {meta("demo-5c9a8459-default", nil), "", false},
		"other tenant":               {meta("demo-5c9a8459-default", map[string]string{ownership.LabelClusterKey: "other-00000000", ownership.LabelTenantNamespace: "default"}), "", false},
		"no tenant namespace label":  {meta("demo-5c9a8459-default", map[string]string{ownership.LabelClusterKey: key}), "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns, ok := TenantNamespace(tc.obj, key)
			if ns != tc.wantNS || ok != tc.wantOK {
				t.Errorf("TenantNamespace = (%q, %v), want (%q, %v)", ns, ok, tc.wantNS, tc.wantOK)
			}
		})
	}
}

func TestStripReserved(t *testing.T) {
	cases := map[string]struct {
		in, want map[string]string
	}{
		"nil":           {nil, nil},
		"all reserved":  {map[string]string{ownership.LabelClusterKey: "x"}, nil},
		"keeps others":  {map[string]string{"app": "web", ownership.LabelTenantNamespace: "x", "example.com/a": "b"}, map[string]string{"app": "web", "example.com/a": "b"}},
		"subdomain":     {map[string]string{"evil.tenancy.vnest.dev/cluster-key": "x", "app": "a"}, map[string]string{"app": "a"}},
		"look-alike":    {map[string]string{"tenancy.vnest.dev.example.com/k": "v"}, map[string]string{"tenancy.vnest.dev.example.com/k": "v"}},
		"no prefix key": {map[string]string{"tenancy.vnest.dev": "v"}, map[string]string{"tenancy.vnest.dev": "v"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, StripReserved(tc.in)); diff != "" {
				t.Errorf("StripReserved (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSuperMeta(t *testing.T) {
	tenant := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "default", Name: "web-1", UID: "uid-1", ResourceVersion: "42", GenerateName: "web-",
		Labels:          map[string]string{"app": "web", ownership.LabelClusterKey: "forged"},
		Annotations:     map[string]string{"note": "x", ownership.AnnotationTenantUID: "forged"},
		OwnerReferences: []metav1.OwnerReference{{Name: "rs"}},
		Finalizers:      []string{"example.com/f"},
	}}
	want := metav1.ObjectMeta{
		Namespace: "demo-5c9a8459-default", Name: "web-1",
		Labels: map[string]string{"app": "web", ownership.LabelClusterKey: key, ownership.LabelTenantNamespace: "default"},
		Annotations: map[string]string{"note": "x", ownership.AnnotationTenantUID: "uid-1",
			ownership.AnnotationVirtualCluster: "default/demo"},
	}
	if diff := cmp.Diff(want, SuperMeta(tenant, owner)); diff != "" {
		t.Errorf("SuperMeta (-want +got):\n%s", diff)
	}
	if !OwnedByTenant(&want, key, "default") || OwnedByTenant(&want, key, "other") || OwnedByTenant(&want, "other", "default") {
		t.Error("OwnedByTenant disagrees with SuperMeta")
	}
	if TenantUID(&want) != "uid-1" {
		t.Errorf("TenantUID = %q", TenantUID(&want))
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "ns-uid", Labels: map[string]string{"team": "a"}}}
	wantNS := metav1.ObjectMeta{
		Name:   "demo-5c9a8459-default",
		Labels: map[string]string{ownership.LabelClusterKey: key, ownership.LabelTenantNamespace: "default"},
		Annotations: map[string]string{ownership.AnnotationTenantUID: "ns-uid",
			ownership.AnnotationVirtualCluster: "default/demo"},
	}
	if diff := cmp.Diff(wantNS, SuperNamespaceMeta(ns, owner)); diff != "" {
		t.Errorf("SuperNamespaceMeta (-want +got):\n%s", diff)
	}
	if !ownership.IsTenantNamespace(&wantNS, key) {
		t.Error("the manager would not recognise the super namespace as the tenant's")
	}
}

func TestSuperClusterScopedName(t *testing.T) {
	long := strings.Repeat("r", 253)
	cases := map[string]struct{ name, want string }{
		"short":          {"test-handler", "demo-5c9a8459-test-handler"},
		"exactly 253":    {strings.Repeat("r", 253-len(key)-1), key + "-" + strings.Repeat("r", 253-len(key)-1)},
		"longest tenant": {long, key + "-" + strings.Repeat("r", 253-len(key)-1-11) + "-" + "0628f261f9"},
		"no dot before the hash": {strings.Repeat("r", 227) + "." + strings.Repeat("s", 30),
			key + "-" + strings.Repeat("r", 227) + "-" + "b7c5ec4a42"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := SuperClusterScopedName(key, tc.name)
			if got != tc.want {
				t.Errorf("SuperClusterScopedName(%q) = %q, want %q", tc.name, got, tc.want)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("%q is not a valid name: %v", got, errs)
			}
		})
	}
	if SuperClusterScopedName(key, long+"x") == SuperClusterScopedName(key, long+"y") {
		t.Error("long names collide")
	}
	if SuperClusterScopedName(key, "rc") == SuperClusterScopedName("other-00000000", "rc") {
		t.Error("two tenants share a name")
	}
}

// TestClusterScopedOwnership: a cluster-scoped super object is the tenant's only with the
// cluster-key label and an empty tenant-namespace label; a super namespace, a namespaced object
// or an unstamped one never passes for one.
func TestClusterScopedOwnership(t *testing.T) {
	tenant := &metav1.ObjectMeta{Name: "test-handler", UID: "uid-rc", Labels: map[string]string{"a": "b"}}
	stamped := SuperClusterScopedMeta(tenant, owner)
	want := metav1.ObjectMeta{
		Name:   "demo-5c9a8459-test-handler",
		Labels: map[string]string{"a": "b", ownership.LabelClusterKey: key, ownership.LabelTenantNamespace: ""},
		Annotations: map[string]string{ownership.AnnotationTenantUID: "uid-rc", ownership.AnnotationVirtualCluster: "default/demo",
			ownership.AnnotationTenantName: "test-handler"},
	}
	if diff := cmp.Diff(want, stamped); diff != "" {
		t.Errorf("SuperClusterScopedMeta (-want +got):\n%s", diff)
	}
	namespaced := stamped
	namespaced.Namespace = "demo-5c9a8459-default"
	superNS := SuperNamespaceMeta(&metav1.ObjectMeta{Name: "default"}, owner)
	noNSLabel := *stamped.DeepCopy()
	delete(noNSLabel.Labels, ownership.LabelTenantNamespace)
	cases := map[string]struct {
		obj      metav1.ObjectMeta
		key      string
		want     bool
		wantName string
	}{
		"stamped":                   {stamped, key, true, "test-handler"},
		"another tenant's key":      {stamped, "other-00000000", false, ""},
		"namespaced":                {namespaced, key, false, ""},
		"a super namespace":         {superNS, key, false, ""},
		"no tenant-namespace label": {noNSLabel, key, false, ""},
		"unstamped, same name":      {metav1.ObjectMeta{Name: stamped.Name}, key, false, ""},
		"empty key owns nothing":    {stamped, "", false, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := OwnedByTenant(&tc.obj, tc.key, ""); got != tc.want {
				t.Errorf("OwnedByTenant(cluster-scoped) = %v, want %v", got, tc.want)
			}
			if got, _ := TenantName(&tc.obj, tc.key); got != tc.wantName {
				t.Errorf("TenantName = %q, want %q", got, tc.wantName)
			}
		})
	}
}
