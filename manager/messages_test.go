package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

func TestConditionMessage(t *testing.T) {
	fits := strings.Repeat("a", maxConditionMessage)
	if got := conditionMessage(fits); got != fits {
		t.Errorf("a message of %d bytes was cut to %d", len(fits), len(got))
	}
	for name, long := range map[string]string{
		"ASCII":                   "START " + strings.Repeat("a", 2*maxConditionMessage) + " END",
		"3-byte characters":       "START " + strings.Repeat("€", maxConditionMessage) + " END",
		"a character at each cut": "START " + strings.Repeat("a€", maxConditionMessage/3) + " END",
	} {
		t.Run(name, func(t *testing.T) {
			got := conditionMessage(long)
			if len(got) > maxConditionMessage || !utf8.ValidString(got) {
				t.Errorf("conditionMessage(%d bytes) = %d bytes, valid UTF-8 %v; want at most %d", len(long), len(got), utf8.ValidString(got), maxConditionMessage)
			}
			if len(got) < maxConditionMessage-8 {
				t.Errorf("conditionMessage(%d bytes) = %d bytes, cut more than needed", len(long), len(got))
			}
			if !strings.HasPrefix(got, "START ") || !strings.HasSuffix(got, " END") || !strings.Contains(got, " bytes cut] … ") {
				t.Errorf("conditionMessage lost the start or the end, or hides the cut: %.40q … %q", got, got[len(got)-40:])
			}
		})
	}
}

// TestConditionMessagesFitTheAPI: the status of a VirtualCluster whose
// condition message is over metav1.Condition's 32768 characters is refused
// whole by the apiserver (the phase with it), so every message the
// manager writes must fit, also those made of what it does not bound: a
// control plane with thousands of evicted pods, a webhook's refusal.
func TestConditionMessagesFitTheAPI(t *testing.T) {
	vc := makeVC("demo").Key("demo-12345678").Provisioner(v1alpha1.ProvisionerCluster).Obj()
	setIdentity(vc)
	t.Run("a control plane with thousands of evicted pods", func(t *testing.T) {
		objs := []client.Object{vc.DeepCopy()}
		created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		pod := func(name string, phase corev1.PodPhase, age time.Duration) *corev1.Pod {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: selectorLabels(vc),
				CreationTimestamp: metav1.NewTime(created.Add(-age))}}
			p.Status.Phase, p.Status.Reason = phase, "Evicted"
			return p
		}
		// The pod that matters is the oldest: a rollout that does not get through.
		objs = append(objs, pod("demo-apiserver-5f7c8d-serve", corev1.PodPending, time.Hour))
		for i := range 1500 {
			objs = append(objs, pod(fmt.Sprintf("demo-apiserver-5f7c8d-%05d", i), corev1.PodFailed, time.Duration(i)*time.Second))
		}
		r, c, _ := newTestReconciler(t, nil, objs...)
		r.readyz = func(context.Context, string, adminCredentials) error { return errors.New("connection refused") }
		prov := &clusterProvisioner{client: c, reader: c, scheme: c.Scheme()}
		v := vc.DeepCopy()
		s := &scope{vc: v, original: v.DeepCopy(), prov: prov, storage: &etcdCreds{}, endpoint: endpoint{URL: "https://10.96.0.10:443"}}
		_, _ = r.runPhases(testContext(t), s, []phase{{r.reconcileControlPlane, v1alpha1.ReasonProvisionFailed}})
		cp := meta.FindStatusCondition(v.Status.Conditions, cpReady)
		checkFits(t, cp)
		for _, want := range []string{"pod demo-apiserver-5f7c8d-serve is Pending", "and 1498 more pods of it"} {
			if !strings.Contains(cp.Message, want) {
				t.Errorf("ControlPlaneReady %.300q… does not say %q", cp.Message, want)
			}
		}
	})
	t.Run("a webhook's long refusal", func(t *testing.T) {
		webhook := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "demo-apiserver",
			errors.New(`admission webhook "policy.example.com" denied the request: `+strings.Repeat("image vnest.local/vnest:dev is not signed; ", 1000)+"see https://policy.example.com"))
		v := vc.DeepCopy()
		r, _, _ := newTestReconciler(t, refuseWrites(&corev1.Secret{}, "demo-pki", webhook), v.DeepCopy())
		s := &scope{vc: v, original: v.DeepCopy(), storage: &etcdCreds{}}
		_, _ = r.runPhases(testContext(t), s, []phase{{r.reconcilePKI, v1alpha1.ReasonPKIFailed}})
		cp := meta.FindStatusCondition(v.Status.Conditions, cpReady)
		checkFits(t, cp)
		if !strings.HasPrefix(cp.Message, "the super cluster refused Secret default/demo-pki") || !strings.HasSuffix(cp.Message, "see https://policy.example.com") {
			t.Errorf("ControlPlaneReady %.100q…%q lost its start or its end", cp.Message, cp.Message[max(0, len(cp.Message)-100):])
		}
	})
}

// checkFits fails the test when cond is missing or its message is too long
// for the API.
func checkFits(t *testing.T, cond *metav1.Condition) {
	t.Helper()
	if cond == nil {
		t.Fatal("no condition")
	}
	if n := utf8.RuneCountInString(cond.Message); n > maxConditionMessage {
		t.Errorf("%s: a message of %d characters, over the API's %d: %.200q…", cond.Type, n, maxConditionMessage, cond.Message)
	}
}
