package syncer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestKeepTenantConditions(t *testing.T) {
	cond := func(typ corev1.PodConditionType, status corev1.ConditionStatus, reason string) corev1.PodCondition {
		return corev1.PodCondition{Type: typ, Status: status, Reason: reason}
	}
	disruption := cond(corev1.DisruptionTarget, corev1.ConditionTrue, "EvictionByEvictionAPI")
	gate := cond("example.com/lb-ready", corev1.ConditionTrue, "")
	for _, tc := range []struct {
		name          string
		super, tenant []corev1.PodCondition
		want          []corev1.PodCondition
	}{{
		name:   "the tenant's eviction marks the pod; the super pod then fails without the mark",
		super:  []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionFalse, "PodFailed")},
		tenant: []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionTrue, ""), disruption},
		want:   []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionFalse, "PodFailed"), disruption},
	}, {
		name:   "a custom condition of a tenant controller stays",
		super:  []corev1.PodCondition{cond(corev1.PodScheduled, corev1.ConditionTrue, "")},
		tenant: []corev1.PodCondition{gate},
		want:   []corev1.PodCondition{cond(corev1.PodScheduled, corev1.ConditionTrue, ""), gate},
	}, {
		name:   "the super pod's own DisruptionTarget (evicted in the super cluster) wins",
		super:  []corev1.PodCondition{cond(corev1.DisruptionTarget, corev1.ConditionTrue, "TerminationByKubelet")},
		tenant: []corev1.PodCondition{disruption},
		want:   []corev1.PodCondition{cond(corev1.DisruptionTarget, corev1.ConditionTrue, "TerminationByKubelet")},
	}, {
		name:   "kubelet and scheduler conditions the super pod no longer reports go",
		super:  nil,
		tenant: []corev1.PodCondition{cond(corev1.PodScheduled, corev1.ConditionFalse, "SuperClusterRejected"), cond(corev1.ContainersReady, corev1.ConditionTrue, ""), cond(corev1.PodResizePending, corev1.ConditionTrue, "")},
		want:   nil,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tp := &corev1.Pod{Status: corev1.PodStatus{Conditions: tc.tenant}}
			got := keepTenantConditions(corev1.PodStatus{Conditions: tc.super}, tp)
			if diff := cmp.Diff(tc.want, got.Conditions); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
