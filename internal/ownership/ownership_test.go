package ownership

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIsTenantNamespace(t *testing.T) {
	const key = "demo-5c9a8459"
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	owned := map[string]string{LabelClusterKey: key}
	cases := map[string]struct {
		ns   *corev1.Namespace
		key  string
		want bool
	}{
		"prefix and label":          {ns("demo-5c9a8459-default", owned), key, true},
		"label without prefix":      {ns("default", owned), key, false},
		"prefix without label":      {ns("demo-5c9a8459-default", nil), key, false},
		"other tenant's label":      {ns("demo-5c9a8459-default", map[string]string{LabelClusterKey: "demo-00000000"}), key, false},
		"key is a prefix of a name": {ns("demo-5c9a84591-x", owned), key, false},
		"empty key":                 {ns("-default", map[string]string{LabelClusterKey: ""}), "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := IsTenantNamespace(tc.ns, tc.key); got != tc.want {
				t.Errorf("IsTenantNamespace(%q, %q) = %v, want %v", tc.ns.Name, tc.key, got, tc.want)
			}
		})
	}
}

func TestIsControlPlaneObject(t *testing.T) {
	const key = "demo-5c9a8459"
	obj := func(labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "demo-pki", Labels: labels}}
	}
	for name, tc := range map[string]struct {
		obj  *corev1.Secret
		want bool
	}{
		"ours":                               {obj(map[string]string{LabelControlPlane: key}), true},
		"another tenant's":                   {obj(map[string]string{LabelControlPlane: "x-00000000"}), false},
		"a synced object is not ours":        {obj(map[string]string{LabelClusterKey: key}), false},
		"unlabelled Secret of the same name": {obj(nil), false},
	} {
		if got := IsControlPlaneObject(tc.obj, key); got != tc.want {
			t.Errorf("%s: IsControlPlaneObject = %v, want %v", name, got, tc.want)
		}
	}
}

func TestIsTenantClusterScoped(t *testing.T) {
	const key = "demo-5c9a8459"
	obj := func(name string, labels map[string]string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Name: name, Labels: labels}
	}
	synced := map[string]string{LabelClusterKey: key, LabelTenantNamespace: ""}
	for name, tc := range map[string]struct {
		obj  *metav1.ObjectMeta
		want bool
	}{
		"synced class":                     {obj(key+"-gvisor", synced), true},
		"a super namespace":                {obj(key+"-default", map[string]string{LabelClusterKey: key, LabelTenantNamespace: "default"}), false},
		"no tenant-namespace label":        {obj(key+"-gvisor", map[string]string{LabelClusterKey: key}), false},
		"label without the name prefix":    {obj("gvisor", synced), false},
		"another tenant's":                 {obj(key+"-gvisor", map[string]string{LabelClusterKey: "other-00000000", LabelTenantNamespace: ""}), false},
		"namespaced object with the label": {&metav1.ObjectMeta{Namespace: "x", Name: key + "-gvisor", Labels: synced}, false},
	} {
		if got := IsTenantClusterScoped(tc.obj, key); got != tc.want {
			t.Errorf("%s: IsTenantClusterScoped = %v, want %v", name, got, tc.want)
		}
	}
}
