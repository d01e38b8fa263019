package mapping

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// Fuzz targets of the mapping rules. Their seeds run as regression tests with plain go test; to
// search, run one at a time: go test ./syncer/mapping -run '^$' -fuzz FuzzSuperNamespace -parallel 1.

// hashedShape matches what a hash-truncated name ends with.
var hashedShape = regexp.MustCompile(`-[0-9a-f]{10}$`)

// sharedName reports whether two tenant names a != b that give the same prefixed name shared (for
// keys ka and kb, within limit) are one of the two ambiguities the rule has, which the ownership labels
// settle (a super object or namespace is the tenant namespace's only when its labels say so):
//   - the same tenant, one name short enough to be kept as it is and ending like a hash, the
//     other hash-truncated to it (a tenant user can name a namespace after the super name of a
//     long one);
//   - two tenants, one key being the other's followed by "-" (a VirtualCluster named after
//     another's 10-character key, whose name part is one letter).
func sharedName(ka, a, kb, b, shared string, limit int) bool {
	kept := func(k, n string) bool { return len(k)+1+len(n) <= limit }
	if ka == kb {
		return kept(ka, a) != kept(kb, b) && hashedShape.MatchString(shared)
	}
	return strings.HasPrefix(ka, kb+"-") || strings.HasPrefix(kb, ka+"-")
}

// FuzzSuperNamespace: for every valid tenant namespace of a tenant whose key the manager
// derived, the super namespace is a valid namespace name with the tenant's prefix, the same on
// every call, readable when it fits, mapped back by its labels, and no other tenant namespace's
// (of this tenant or another) except for the ambiguities sharedName names.
func FuzzSuperNamespace(f *testing.F) {
	long := strings.Repeat("a", 63)
	for _, seed := range []struct{ vcA, nsA, vcB, nsB string }{
		{"demo", "default", "demo", "kube-system"},
		{"demo", long, "demo", long[:62] + "b"},
		{"demo", strings.Repeat("a", 37) + "-" + strings.Repeat("b", 25), "other", "default"},
		{"a", "x", "a", "a-" + strings.Repeat("-", 40) + "b"},
		{"Web.App_1", "n-", "9lives", "0"},
		// The two ambiguities of sharedName: a name kept as it is that is another's
		// hash-truncated one; a VirtualCluster named after the key of one named "a".
		{"demo", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-c771386707", "demo", long},
		{"a", "d4d85eb9-default", "a-c8fe8782", "default"},
	} {
		f.Add(seed.vcA, seed.nsA, seed.vcB, seed.nsB)
	}
	f.Fuzz(func(t *testing.T, vcA, nsA, vcB, nsB string) {
		if len(validation.IsDNS1123Label(nsA)) > 0 {
			return
		}
		keyA := v1alpha1.ClusterKey("default", vcA, "uid-a")
		got := SuperNamespace(keyA, nsA)
		checkPrefixedName(t, SuperNamespace, keyA, nsA, got, MaxNamespaceLength, validation.IsDNS1123Label)
		meta := SuperNamespaceMeta(&metav1.ObjectMeta{Name: nsA, UID: "uid-ns"}, Owner{ClusterKey: keyA})
		if back, ok := TenantNamespace(&meta, keyA); !ok || back != nsA || !ownership.IsTenantNamespace(&meta, keyA) {
			t.Fatalf("super namespace %q maps back to (%q, %t), want %q", meta.Name, back, ok, nsA)
		}
		if len(validation.IsDNS1123Label(nsB)) > 0 {
			return
		}
		for _, keyB := range []string{keyA, v1alpha1.ClusterKey("default", vcB, "uid-b")} {
			if keyB == keyA && nsB == nsA {
				continue
			}
			if other := SuperNamespace(keyB, nsB); other == got && !sharedName(keyA, nsA, keyB, nsB, got, MaxNamespaceLength) {
				t.Fatalf("SuperNamespace(%q, %q) = SuperNamespace(%q, %q) = %q", keyA, nsA, keyB, nsB, got)
			}
			if OwnedByTenant(&meta, keyB, nsB) {
				t.Fatalf("the super namespace of %q/%q passes for %q/%q's", keyA, nsA, keyB, nsB)
			}
		}
	})
}

// checkPrefixedName checks got, what rule gives for tenantName of the tenant with key: valid by
// valid, with the tenant's prefix, the same again, and "<key>-<name>" when that fits in limit.
func checkPrefixedName(t *testing.T, rule func(key, name string) string, key, tenantName, got string, limit int, valid func(string) []string) {
	t.Helper()
	if errs := valid(got); len(errs) > 0 {
		t.Fatalf("(%q, %q) gives %q, not a valid name: %v", key, tenantName, got, errs)
	}
	if !strings.HasPrefix(got, ownership.NamespacePrefix(key)) {
		t.Fatalf("(%q, %q) gives %q, without the tenant's prefix", key, tenantName, got)
	}
	if again := rule(key, tenantName); again != got {
		t.Fatalf("(%q, %q) gives %q, then %q", key, tenantName, got, again)
	}
	if full := ownership.NamespacePrefix(key) + tenantName; len(full) <= limit && got != full {
		t.Fatalf("(%q, %q) gives %q, want %q (it fits)", key, tenantName, got, full)
	}
}

// FuzzSuperClusterScopedName: for every valid name of a cluster-scoped tenant object, the super
// name is a valid DNS subdomain with the tenant's prefix, readable when it fits, mapped back by
// its annotation, and no other name's of the tenant except as sharedName says.
func FuzzSuperClusterScopedName(f *testing.F) {
	long := strings.Repeat("r", 253)
	for _, seed := range []struct{ vc, a, b string }{
		{"demo", "test-handler", "gvisor"},
		{"demo", long, long[:252] + "s"},
		{"demo", strings.Repeat("r", 227) + "." + strings.Repeat("s", 30), strings.Repeat("r", 227) + "-" + strings.Repeat("s", 30)},
		{"demo", strings.Repeat("a.", 126) + "b", "a"},
		{"x", "0.0", "a-b.c"},
	} {
		f.Add(seed.vc, seed.a, seed.b)
	}
	f.Fuzz(func(t *testing.T, vc, a, b string) {
		if len(validation.IsDNS1123Subdomain(a)) > 0 {
			return
		}
		key := v1alpha1.ClusterKey("default", vc, "uid")
		got := SuperClusterScopedName(key, a)
		checkPrefixedName(t, SuperClusterScopedName, key, a, got, MaxSubdomainLength, validation.IsDNS1123Subdomain)
		meta := SuperClusterScopedMeta(&metav1.ObjectMeta{Name: a, UID: "uid-rc"}, Owner{ClusterKey: key})
		if meta.Name != got {
			t.Fatalf("SuperClusterScopedName(%q, %q) = %q, then %q", key, a, got, meta.Name)
		}
		if back, ok := TenantName(&meta, key); !ok || back != a {
			t.Fatalf("super object %q maps back to (%q, %t), want %q", got, back, ok, a)
		}
		if a != b && len(validation.IsDNS1123Subdomain(b)) == 0 && SuperClusterScopedName(key, b) == got && !sharedName(key, a, key, b, got, MaxSubdomainLength) {
			t.Fatalf("SuperClusterScopedName(%q, %q) = SuperClusterScopedName(%q, %q) = %q", key, a, key, b, got)
		}
	})
}

// FuzzSuperMeta: whatever labels and annotations a tenant object carries ("key=value" lines),
// its super metadata keeps every one that is not reserved, with its value, carries no reserved
// key but the ownership stamp, and that stamp names the tenant object.
func FuzzSuperMeta(f *testing.F) {
	f.Add("app=web\ntenancy.vnest.dev/cluster-key=forged", "note=x\ntenancy.vnest.dev/tenant-uid=forged\nevil.tenancy.vnest.dev/virtual-cluster=x")
	f.Add("tenancy.vnest.dev.example.com/k=v\ntenancy.vnest.dev=v", "TENANCY.VNEST.DEV/tenant-uid=x\na.b/tenancy.vnest.dev/c=d")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, labelLines, annotationLines string) {
		labels, annotations := parseLines(labelLines), parseLines(annotationLines)
		tenant := &metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web", Labels: labels, Annotations: annotations}
		meta := SuperMeta(tenant, owner)
		stamp := map[string]string{
			ownership.LabelClusterKey: key, ownership.LabelTenantNamespace: "default",
			ownership.AnnotationTenantUID: "uid-web", ownership.AnnotationVirtualCluster: owner.VirtualCluster,
		}
		for _, m := range []struct {
			what      string
			in, out   map[string]string
			stampKeys []string
		}{
			{"label", labels, meta.Labels, []string{ownership.LabelClusterKey, ownership.LabelTenantNamespace}},
			{"annotation", annotations, meta.Annotations, []string{ownership.AnnotationTenantUID, ownership.AnnotationVirtualCluster}},
		} {
			for k, v := range m.in {
				if got, ok := m.out[k]; !reserved(k) && (!ok || got != v) {
					t.Errorf("tenant %s %q=%q became %q (kept: %t)", m.what, k, v, got, ok)
				}
			}
			for k, v := range m.out {
				if reserved(k) && !slices.Contains(m.stampKeys, k) {
					t.Errorf("reserved %s %q=%q survived", m.what, k, v)
				}
			}
			for _, k := range m.stampKeys {
				if m.out[k] != stamp[k] {
					t.Errorf("stamp %s %q = %q, want %q", m.what, k, m.out[k], stamp[k])
				}
			}
		}
		if ns, ok := TenantNamespace(&meta, key); !ok || ns != "default" || TenantUID(&meta) != types.UID("uid-web") {
			t.Errorf("super metadata maps back to (%q, %t, %q)", ns, ok, TenantUID(&meta))
		}
	})
}

// reserved is the test's own reading of vnest's reserved keys, not IsReserved's: a key whose
// prefix (before the first "/") is tenancy.vnest.dev or a subdomain of it.
func reserved(k string) bool {
	prefix, _, ok := strings.Cut(k, "/")
	return ok && (prefix == "tenancy.vnest.dev" || strings.HasSuffix(prefix, ".tenancy.vnest.dev"))
}

// parseLines is the map of the "key=value" lines of s (a line without "=" is a key with an empty
// value); nil when s is empty.
func parseLines(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}
