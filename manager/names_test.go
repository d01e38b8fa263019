package manager

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

func TestRangeEnd(t *testing.T) {
	cases := map[string]struct{ prefix, want string }{
		"plain":                 {"/vnest/tenants/demo-1/", "/vnest/tenants/demo-10"},
		"last byte incremented": {"abc", "abd"},
		"trailing 0xff dropped": {"ab\xff", "ac"},
		"several 0xff":          {"a\xff\xff", "b"},
		"all 0xff":              {"\xff\xff", "\x00"},
		"empty":                 {"", "\x00"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := rangeEnd(tc.prefix); got != tc.want {
				t.Errorf("rangeEnd(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
			// The etcd client's own rule must agree (it spells "no end" "\x00" too).
			if got := clientv3.GetPrefixRangeEnd(tc.prefix); got != tc.want {
				t.Errorf("clientv3.GetPrefixRangeEnd(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
}

// TestTenantKeyRangeIsolation pins the property the etcd role relies on:
// a tenant's range holds its keys and no other tenant's, even when one
// cluster key is a prefix of another.
func TestTenantKeyRangeIsolation(t *testing.T) {
	a := EtcdPrefix("v-12345678")
	b := EtcdPrefix("v-12345678-9abcdef0") // a's key is a prefix of b's
	start, end := tenantKeyRange(a)
	in := func(key string) bool { return key >= start && key < end }
	for key, want := range map[string]bool{
		a + "/pods/default/x":  true,
		a + "/health":          true,
		a:                      false, // the bare prefix is no key the apiserver writes
		b + "/pods/default/x":  false,
		a + "0/pods":           false,
		"/registry/pods/x":     false,
		EtcdPrefixRoot + "v-1": false,
	} {
		if got := in(key); got != want {
			t.Errorf("key %q in [%q, %q) = %v, want %v", key, start, end, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	vc := makeVC("team-a").Obj()
	for got, want := range map[string]string{
		EtcdPrefix("team-a-1234abcd"): "/vnest/tenants/team-a-1234abcd",
		EtcdUser("team-a-1234abcd"):   "vnest-tenant-team-a-1234abcd",
		vc.PKISecretName():            "team-a-pki",
		ControlPlaneName(vc):          "team-a-apiserver",
		vc.KubeconfigSecretName():     "team-a-kubeconfig",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// The longest name the CRD allows still gives valid derived names.
	long := makeVC("a234567890123456789012345678901234567890").Obj()
	if n := len(ControlPlaneName(long)); n > 63 {
		t.Errorf("ControlPlaneName of a %d-character name is %d characters, more than a Service name may have", v1alpha1.MaxNameLength, n)
	}
}

func TestEndpointPort(t *testing.T) {
	for endpoint, want := range map[string]int{
		"https://10.0.0.1:7001": 7001, "https://[::1]:7002": 7002, "https://host": 0, "": 0, "::bad": 0,
	} {
		if got := endpointPort(endpoint); got != want {
			t.Errorf("endpointPort(%q) = %d, want %d", endpoint, got, want)
		}
	}
}

func TestPickPort(t *testing.T) {
	allFree := func(int) bool { return true }
	busy := func(ports ...int) func(int) bool {
		return func(p int) bool {
			for _, b := range ports {
				if p == b {
					return false
				}
			}
			return true
		}
	}
	cases := map[string]struct {
		remembered int
		used       map[int]bool
		free       func(int) bool
		want       int
	}{
		"first free":                             {0, nil, allFree, 7000},
		"remembered is kept":                     {7005, nil, allFree, 7005},
		"remembered even if busy (it is ours)":   {7005, nil, busy(7005), 7005},
		"remembered but taken by another tenant": {7005, map[int]bool{7005: true}, allFree, 7000},
		"remembered outside the range":           {8000, nil, allFree, 7000},
		"skip used and busy":                     {0, map[int]bool{7000: true}, busy(7001), 7002},
		"none left":                              {0, map[int]bool{7000: true, 7001: true}, busy(7002, 7003, 7004, 7005, 7006, 7007, 7008, 7009), 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := pickPort(tc.remembered, 7000, 7009, tc.used, tc.free); got != tc.want {
				t.Errorf("pickPort = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRestartDelay(t *testing.T) {
	for restarts, want := range map[int]time.Duration{
		0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 32 * time.Second, 7: time.Minute, 50: time.Minute,
	} {
		if got := restartDelay(restarts); got != want {
			t.Errorf("restartDelay(%d) = %s, want %s", restarts, got, want)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	cases := map[string]struct {
		lo, hi int
		ok     bool
	}{
		"7000-7999": {7000, 7999, true}, "20000-20000": {20000, 20000, true}, " 1 - 2 ": {1, 2, true},
		"7999-7000": {0, 0, false}, "0-10": {0, 0, false}, "1-70000": {0, 0, false}, "7000": {0, 0, false}, "a-b": {0, 0, false},
	}
	for in, tc := range cases {
		lo, hi, err := parsePortRange(in)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("parsePortRange(%q) = %d, %d, %v; want %d, %d, ok=%v", in, lo, hi, err, tc.lo, tc.hi, tc.ok)
		}
	}
}

func TestOwnsObject(t *testing.T) {
	vc := makeVC("demo").Key("demo-1").Obj()
	other := makeVC("other").Key("other-1").Obj()
	secret := func(labels map[string]string, controller *v1alpha1.VirtualCluster) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "demo-pki", Namespace: "default", Labels: labels}}
		if controller != nil {
			s.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(controller, v1alpha1.GroupVersion.WithKind("VirtualCluster"))}
		}
		return s
	}
	for name, tc := range map[string]struct {
		secret *corev1.Secret
		want   bool
	}{
		"labelled":                              {secret(map[string]string{ownership.LabelControlPlane: "demo-1"}, nil), true},
		"controlled (written before the label)": {secret(nil, vc), true},
		"another tenant's":                      {secret(map[string]string{ownership.LabelControlPlane: "other-1"}, other), false},
		"a user's Secret of the same name":      {secret(nil, nil), false},
		"a synced object's label":               {secret(map[string]string{ownership.LabelClusterKey: "demo-1"}, nil), false},
	} {
		if got := ownsObject(vc, tc.secret); got != tc.want {
			t.Errorf("%s: ownsObject = %v, want %v", name, got, tc.want)
		}
	}
}
