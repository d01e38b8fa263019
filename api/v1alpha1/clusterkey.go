package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

const (
	// MaxClusterKeyLength bounds ClusterKey, so that "<key>-<tenant namespace>"
	// fits a 63-character namespace name for most tenant namespaces.
	MaxClusterKeyLength = 20

	clusterKeyNameChars = 10
	clusterKeyHashChars = 8
)

// ClusterKey derives the key that identifies a VirtualCluster in the super
// cluster. The manager computes it once, stores it in status.clusterKey, and
// everyone else reads it from there.
//
// The rule: take metadata.name, lowercase it, turn every run of characters
// other than [a-z0-9] into one '-', trim '-' at both ends, keep the first 10
// characters and trim a trailing '-' again; if the result is empty or does not
// start with a letter, prefix "v" (and cut back to 10). If it then has the shape
// of a whole key of a one-letter name (a letter, '-' and 8 hex digits), drop its
// last character. Append "-" and the first 8 hex digits of
// sha256("<namespace>/<name>/<uid>").
//
// No key followed by '-' starts another key, so "<key>-<tenant namespace>"
// never names the same super namespace for two tenants: for "<k1>-" to start
// k2, k2's readable part must be k1 itself (the hash has no '-'), and of all
// keys only a one-letter name's fits in 10 characters; the shape rule keeps
// it out.
//
// The result is at most 19 characters, lowercase, a DNS-1035 label (so it can
// start Service and namespace names alike), and stable for a given object. The
// readable part is only for humans: uniqueness comes from the hash, and
// because the UID takes part, a VirtualCluster deleted and recreated under the
// same name gets a new key and never adopts leftovers of its predecessor.
func ClusterKey(namespace, name string, uid types.UID) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name + "/" + string(uid)))
	return clusterKeyNamePart(name) + "-" + hex.EncodeToString(sum[:])[:clusterKeyHashChars]
}

func clusterKeyNamePart(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "v" + s
	}
	if len(s) > clusterKeyNameChars {
		s = s[:clusterKeyNameChars]
	}
	s = strings.TrimRight(s, "-")
	if looksLikeShortKey(s) {
		s = s[:len(s)-1]
	}
	return s
}

// IsClusterKey reports whether s has the shape of a key ClusterKey makes: a
// readable part of 1 to 10 characters, a lowercase letter first, then
// lowercase letters, digits and '-'; then '-' and 8 lowercase hex digits. It
// says nothing of whether a VirtualCluster has the key. The syncer caches
// super events only in namespaces named "<key>-…" with a key of this shape
// (syncer/event.go), so a key ClusterKey makes must always pass.
func IsClusterKey(s string) bool {
	i := strings.LastIndexByte(s, '-')
	if i < 1 || i > clusterKeyNameChars || len(s)-i-1 != clusterKeyHashChars || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return strings.Trim(s[:i], "abcdefghijklmnopqrstuvwxyz0123456789-") == "" &&
		strings.Trim(s[i+1:], "0123456789abcdef") == ""
}

// looksLikeShortKey reports whether s is shaped like the key of a
// one-letter name: a letter, '-' and clusterKeyHashChars hex digits.
func looksLikeShortKey(s string) bool {
	if len(s) != 2+clusterKeyHashChars || s[0] < 'a' || s[0] > 'z' || s[1] != '-' {
		return false
	}
	return strings.Trim(s[2:], "0123456789abcdef") == ""
}
