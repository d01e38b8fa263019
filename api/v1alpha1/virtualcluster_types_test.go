package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestKubeconfigSecretName(t *testing.T) {
	for _, name := range []string{"demo", strings.Repeat("a", MaxNameLength)} {
		vc := &VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: name}}
		got := vc.KubeconfigSecretName()
		if got != name+"-kubeconfig" {
			t.Errorf("KubeconfigSecretName() = %q, want %q", got, name+"-kubeconfig")
		}
		// Also a DNS label, so it is usable as a volume or label value.
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("KubeconfigSecretName() = %q is not a DNS label: %v", got, errs)
		}
	}
}

func TestConditionsAccessors(t *testing.T) {
	vc := &VirtualCluster{}
	conditions := vc.GetConditions()
	meta.SetStatusCondition(&conditions, metav1.Condition{Type: ConditionControlPlaneReady, Status: metav1.ConditionFalse, Reason: ReasonProvisioning})
	meta.SetStatusCondition(&conditions, metav1.Condition{Type: ConditionControlPlaneReady, Status: metav1.ConditionTrue, Reason: ReasonReady})
	vc.SetConditions(conditions)
	if len(vc.Status.Conditions) != 1 || !meta.IsStatusConditionTrue(vc.GetConditions(), ConditionControlPlaneReady) {
		t.Errorf("conditions = %+v, want one True %s", vc.Status.Conditions, ConditionControlPlaneReady)
	}
}

func TestScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []runtime.Object{&VirtualCluster{}, &VirtualClusterList{}} {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil || len(gvks) != 1 || gvks[0].GroupVersion() != GroupVersion {
			t.Errorf("ObjectKinds(%T) = %v, %v; want one kind in %s", obj, gvks, err, GroupVersion)
		}
	}
}
