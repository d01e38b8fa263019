package syncer

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

func ephemeral(name string, env ...corev1.EnvVar) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: name, Image: "vnest.local/busybox:1", Env: env, Stdin: true, TTY: true,
	}, TargetContainerName: "main"}
}

func TestWithEphemeralContainers(t *testing.T) {
	nsRef := corev1.EnvVar{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}
	nodeRef := corev1.EnvVar{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}
	service := []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "10.0.0.1"}}
	tenantWith := func(ecs ...corev1.EphemeralContainer) *corev1.Pod {
		p := MakePod("app", "web").Obj()
		p.Spec.EphemeralContainers = ecs
		return p
	}
	superWith := func(ecs ...corev1.EphemeralContainer) *corev1.Pod {
		p := MakePod(testSuperNS, "web").Owned("uid-web").Obj()
		p.Spec.EphemeralContainers = ecs
		return p
	}
	cases := map[string]struct {
		super, tenant *corev1.Pod
		want          []corev1.EphemeralContainer // nil: nothing to add
	}{
		"no ephemeral containers": {super: superWith(), tenant: tenantWith()},
		"all there already":       {super: superWith(ephemeral("debugger")), tenant: tenantWith(ephemeral("debugger"))},
		"a new one is added": {
			super:  superWith(),
			tenant: tenantWith(ephemeral("debugger")),
			want:   []corev1.EphemeralContainer{ephemeral("debugger", service...)},
		},
		"added after those there, which stay": {
			super:  superWith(ephemeral("debugger", service...)),
			tenant: tenantWith(ephemeral("debugger"), ephemeral("debugger2")),
			want:   []corev1.EphemeralContainer{ephemeral("debugger", service...), ephemeral("debugger2", service...)},
		},
		"one at a time": {
			super:  superWith(),
			tenant: tenantWith(ephemeral("debugger"), ephemeral("debugger2")),
			want:   []corev1.EphemeralContainer{ephemeral("debugger", service...)},
		},
		"a refused one is not tried again; the next one is": {
			super:  withRecord(superWith(), annotationRefusedEphemeral, "debugger"),
			tenant: tenantWith(ephemeral("debugger"), ephemeral("debugger2")),
			want:   []corev1.EphemeralContainer{ephemeral("debugger2", service...)},
		},
		"only refused ones": {
			super:  withRecord(superWith(), annotationRefusedEphemeral, "debugger", "debugger2"),
			tenant: tenantWith(ephemeral("debugger"), ephemeral("debugger2")),
		},
		"a refused one due for retry is tried": {
			super:  withRecord(superWith(), annotationRefusedEphemeral, "debugger", retryMark+"debugger2"),
			tenant: tenantWith(ephemeral("debugger"), ephemeral("debugger2")),
			want:   []corev1.EphemeralContainer{ephemeral("debugger2", service...)},
		},
		"env of the downward API gets the tenant's values": {
			super:  superWith(),
			tenant: tenantWith(ephemeral("debugger", nsRef, nodeRef)),
			want: []corev1.EphemeralContainer{ephemeral("debugger", service[0],
				corev1.EnvVar{Name: "NS", Value: "app"}, nodeRef)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := tc.tenant.DeepCopy()
			got := withEphemeralContainers(tc.super, tc.tenant, func() []corev1.EnvVar { return service })
			if tc.want == nil {
				if got != nil {
					t.Errorf("want nothing to add, got %+v", got.Spec.EphemeralContainers)
				}
				return
			}
			if got == nil {
				t.Fatal("got nothing to add")
			}
			if diff := cmp.Diff(tc.want, got.Spec.EphemeralContainers); diff != "" {
				t.Errorf("ephemeral containers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.tenant); diff != "" {
				t.Errorf("the tenant pod changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSyncPodEphemeralContainers: a tenant's new ephemeral container goes down alone through the
// super pods/ephemeralcontainers subresource; the next round stamps the tenant generation.
func TestSyncPodEphemeralContainers(t *testing.T) {
	tenant := MakePod("default", "web").Obj()
	tenant.Generation = 2
	tenant.Spec.EphemeralContainers = []corev1.EphemeralContainer{ephemeral("debugger")}
	super := MakePod(testSuperNS, "web").Owned("uid-web").Annotation(annotationTenantGeneration, "1").Obj()

	h := newHarness(t, []object{super}, []object{tenant})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatalf("syncPod: %v", err)
	}
	if diff := cmp.Diff([]string{"update pods/ephemeralcontainers demo-5c9a8459-default/web"}, writes(h.super)); diff != "" {
		t.Fatalf("super writes (-want +got):\n%s", diff)
	}
	sent := h.super.Actions()[0].(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
	if len(sent.Spec.EphemeralContainers) != 1 || sent.Spec.EphemeralContainers[0].Name != "debugger" {
		t.Errorf("ephemeral containers sent: %+v", sent.Spec.EphemeralContainers)
	}

	super.Spec.EphemeralContainers = sent.Spec.EphemeralContainers
	h = newHarness(t, []object{super}, []object{tenant})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err != nil {
		t.Fatalf("syncPod after the add: %v", err)
	}
	if diff := cmp.Diff([]string{"update pods demo-5c9a8459-default/web"}, writes(h.super)); diff != "" {
		t.Fatalf("super writes after the add (-want +got):\n%s", diff)
	}
	sent = h.super.Actions()[0].(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
	if got := sent.Annotations[annotationTenantGeneration]; got != "2" || len(sent.Spec.EphemeralContainers) != 1 {
		t.Errorf("tenant generation %q with %d ephemeral containers; want 2 with 1", got, len(sent.Spec.EphemeralContainers))
	}
}

// refuse makes the fake super cluster refuse updates of pods/sub as Pod Security would.
func refuse(h *harness, sub string) {
	h.super.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != sub {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web", errors.New("violates PodSecurity"))
	})
}

// TestPodReferencesOfEphemeralContainers: what an ephemeral container reads goes down too.
func TestPodReferencesOfEphemeralContainers(t *testing.T) {
	p := MakePod("default", "web").Obj()
	ec := ephemeral("debugger")
	ec.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "debug-cfg"}}}}
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{ec}
	if cms, _ := podReferences(p); !cmp.Equal(cms, []string{"debug-cfg"}) {
		t.Errorf("configmaps = %v, want [debug-cfg]", cms)
	}
}
