package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestClusterKey(t *testing.T) {
	const uid = types.UID("6b1f0a4e-3c2d-4e8f-9a7b-1c2d3e4f5a6b")
	cases := map[string]struct {
		namespace, name string
		wantNamePart    string
	}{
		"plain":                   {"default", "demo", "demo"},
		"exactly ten":             {"default", "abcdefghij", "abcdefghij"},
		"truncated":               {"team-a", "a-rather-long-virtual-cluster-name", "a-rather-l"},
		"hyphen at the cut":       {"default", "abcdefghi-jk", "abcdefghi"},
		"uppercase":               {"default", "TeamA", "teama"},
		"dots":                    {"default", "team.a.prod", "team-a-pro"},
		"runs of odd characters":  {"default", "a..__..b", "a-b"},
		"leading digit":           {"default", "1st-cluster", "v1st-clust"},
		"only digits":             {"default", "12345678901234", "v123456789"},
		"only punctuation":        {"default", "...", "v"},
		"empty":                   {"default", "", "v"},
		"unicode":                 {"default", "tëam-ünïcode", "t-am-n-cod"},
		"emoji":                   {"default", "🚀rocket", "rocket"},
		"253-char subdomain name": {"default", strings.Repeat("a.", 126) + "a", "a-a-a-a-a"},
		"63-char label name":      {strings.Repeat("n", 63), strings.Repeat("x", 63), "xxxxxxxxxx"},
		"shaped like a short key": {"default", "a-63aa3793", "a-63aa379"},
		"longer, same start":      {"default", "a-63aa3793-prod", "a-63aa379"},
		"not hex after the dash":  {"default", "a-63aa379z", "a-63aa379z"},
		"two letters":             {"default", "ab-63aa379", "ab-63aa379"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			key := ClusterKey(tc.namespace, tc.name, uid)
			if again := ClusterKey(tc.namespace, tc.name, uid); again != key {
				t.Fatalf("ClusterKey is not stable: %q then %q", key, again)
			}
			if len(key) > MaxClusterKeyLength {
				t.Errorf("ClusterKey(%q) = %q: %d characters, want at most %d", tc.name, key, len(key), MaxClusterKeyLength)
			}
			if errs := validation.IsDNS1035Label(key); len(errs) > 0 {
				t.Errorf("ClusterKey(%q) = %q is not a DNS-1035 label: %v", tc.name, key, errs)
			}
			namePart, hash, ok := cutLast(key, "-")
			if !ok || namePart != tc.wantNamePart {
				t.Errorf("ClusterKey(%q) = %q: readable part %q, want %q", tc.name, key, namePart, tc.wantNamePart)
			}
			if len(hash) != clusterKeyHashChars || strings.Trim(hash, "0123456789abcdef") != "" {
				t.Errorf("ClusterKey(%q) = %q: hash part %q is not %d hex digits", tc.name, key, hash, clusterKeyHashChars)
			}
			if !IsClusterKey(key) {
				t.Errorf("IsClusterKey(ClusterKey(%q) = %q) = false, want true", tc.name, key)
			}
		})
	}
}

// TestClusterKeyPinned pins the rule: changing it would rename every existing
// tenant's super-cluster objects.
func TestClusterKeyPinned(t *testing.T) {
	if got, want := ClusterKey("default", "demo", "uid-1"), "demo-"+sha256Hex8("default/demo/uid-1"); got != want {
		t.Fatalf("ClusterKey = %q, want %q", got, want)
	}
	if got, want := ClusterKey("default", "demo", "uid-1"), "demo-5c9a8459"; got != want {
		t.Fatalf("ClusterKey = %q, want %q (the derivation rule changed)", got, want)
	}
}

func TestClusterKeyDistinct(t *testing.T) {
	inputs := []struct {
		namespace, name string
		uid             types.UID
	}{
		{"default", "demo", "uid-1"},
		{"default", "demo", "uid-2"},
		{"other", "demo", "uid-1"},
		{"default", "demo2", "uid-1"},
		{"default", "Demo", "uid-1"},
		// Same readable part, same UID: only namespace/name tell them apart.
		{"default", "abcdefghij-x", "uid-1"},
		{"default", "abcdefghij-y", "uid-1"},
	}
	seen := map[string]int{}
	for i, in := range inputs {
		key := ClusterKey(in.namespace, in.name, in.uid)
		if j, dup := seen[key]; dup {
			t.Errorf("inputs %d %+v and %d %+v share key %q", j, inputs[j], i, in, key)
		}
		seen[key] = i
	}
}

// TestIsClusterKey: the shape of a key, not whether a VirtualCluster has it. Keys ClusterKey
// makes all pass (TestClusterKey).
func TestIsClusterKey(t *testing.T) {
	for s, want := range map[string]bool{
		"demo-5c9a8459":         true,
		"a-63aa379-0b1c2d3e":    true, // a readable part with a '-'
		"abcdefghij-0b1c2d3e":   true,
		"v123456789-0b1c2d3e":   true,
		"kube-system":           false,
		"default":               false,
		"":                      false,
		"demo-5c9a845":          false, // 7 hex digits
		"demo-5c9a84590":        false, // 9
		"demo-5C9A8459":         false, // uppercase hex
		"demo-5c9a845g":         false,
		"-5c9a8459":             false, // no readable part
		"abcdefghijk-0b1c2d3e":  false, // 11 characters
		"1st-0b1c2d3e":          false, // a digit first
		"Demo-5c9a8459":         false,
		"de.mo-5c9a8459":        false,
		"demo-5c9a8459-default": false, // a super namespace, not a key
	} {
		if got := IsClusterKey(s); got != want {
			t.Errorf("IsClusterKey(%q) = %v, want %v", s, got, want)
		}
	}
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func sha256Hex8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// TestClusterKeyPrefixFree: no key followed by "-" starts another key. The
// syncer names a tenant's super namespaces "<key>-<tenant namespace>" (and
// its cluster-scoped objects "<key>-<name>"), so a key whose prefix "<key>-"
// starts another key would give two tenants the same super name: namespace
// "<hash>-x" of one and "x" of the other. A VirtualCluster named after
// another's key (a one-letter name's "a-<hash>") is the one way there.
func TestClusterKeyPrefixFree(t *testing.T) {
	for _, first := range []string{"a", "z", "v"} {
		for _, uid := range []types.UID{"uid-1", "uid-2", "6b1f0a4e-3c2d-4e8f-9a7b-1c2d3e4f5a6b"} {
			k1 := ClusterKey("default", first, uid)
			for _, ns := range []string{"default", "other"} {
				k2 := ClusterKey(ns, k1, uid)
				if rest, ok := strings.CutPrefix(k2, k1+"-"); ok {
					t.Errorf("ClusterKey(%q, %q) = %q starts with %q, the key of %q and a dash: tenant namespace %q of one and \"x\" of the other both become super namespace %q",
						ns, k1, k2, k1+"-", first, rest+"-x", k2+"-x")
				}
			}
		}
	}
}
