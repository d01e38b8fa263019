package syncer

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// TestTenantReady: a tenant pod with readiness gates is Ready as its kubelet would make it,
// from the super pod's containers and the gates' conditions in the tenant.
func TestTenantReady(t *testing.T) {
	earlier, now := metav1.Unix(100, 0), metav1.Unix(200, 0)
	cond := func(typ corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) corev1.PodCondition {
		return corev1.PodCondition{Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: earlier}
	}
	containersReady := cond(corev1.ContainersReady, corev1.ConditionTrue, "", "")
	superReady := cond(corev1.PodReady, corev1.ConditionTrue, "", "")
	gateTrue := cond("example.com/lb", corev1.ConditionTrue, "", "")
	gateFalse := cond("example.com/lb", corev1.ConditionFalse, "", "")
	at := func(c corev1.PodCondition, t metav1.Time) corev1.PodCondition { c.LastTransitionTime = t; return c }
	for _, tc := range []struct {
		name   string
		gates  []corev1.PodConditionType
		up     []corev1.PodCondition // the status going up: the super pod's, the tenant's kept
		tenant []corev1.PodCondition // the tenant pod's before
		want   []corev1.PodCondition
	}{{
		name: "without gates Ready is the super pod's",
		up:   []corev1.PodCondition{containersReady, superReady},
		want: []corev1.PodCondition{containersReady, superReady},
	}, {
		name:  "a gate without its condition holds Ready back",
		gates: []corev1.PodConditionType{"example.com/lb", "example.com/dns"},
		up:    []corev1.PodCondition{containersReady, superReady},
		want: []corev1.PodCondition{containersReady, at(cond(corev1.PodReady, corev1.ConditionFalse, "ReadinessGatesNotReady",
			`corresponding condition of pod readiness gate "example.com/lb" does not exist., corresponding condition of pod readiness gate "example.com/dns" does not exist.`), now)},
	}, {
		name:   "a gate that is not True holds Ready back; the transition time stays while Ready does",
		gates:  []corev1.PodConditionType{"example.com/lb"},
		up:     []corev1.PodCondition{containersReady, superReady, gateFalse},
		tenant: []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionFalse, "ReadinessGatesNotReady", "")},
		want: []corev1.PodCondition{containersReady, cond(corev1.PodReady, corev1.ConditionFalse, "ReadinessGatesNotReady",
			`the status of pod readiness gate "example.com/lb" is not "True", but False`), gateFalse},
	}, {
		name:   "the tenant controller sets the gate: Ready",
		gates:  []corev1.PodConditionType{"example.com/lb"},
		up:     []corev1.PodCondition{containersReady, superReady, gateTrue},
		tenant: []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionFalse, "ReadinessGatesNotReady", "")},
		want:   []corev1.PodCondition{containersReady, at(superReady, now), gateTrue},
	}, {
		name:  "containers not ready: the super pod's Ready, as the kubelet's",
		gates: []corev1.PodConditionType{"example.com/lb"},
		up: []corev1.PodCondition{cond(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [main]"),
			cond(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [main]"), gateTrue},
		want: []corev1.PodCondition{cond(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [main]"),
			cond(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [main]"), gateTrue},
	}, {
		name:  "a super pod still carrying the gates: its containers are ready, so the gates decide",
		gates: []corev1.PodConditionType{"example.com/lb"},
		up:    []corev1.PodCondition{containersReady, cond(corev1.PodReady, corev1.ConditionFalse, "ReadinessGatesNotReady", "x"), gateTrue},
		want:  []corev1.PodCondition{containersReady, at(superReady, now), gateTrue},
	}, {
		name:  "no Ready reported yet: none made",
		gates: []corev1.PodConditionType{"example.com/lb"},
		up:    []corev1.PodCondition{cond(corev1.PodScheduled, corev1.ConditionTrue, "", "")},
		want:  []corev1.PodCondition{cond(corev1.PodScheduled, corev1.ConditionTrue, "", "")},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tp := &corev1.Pod{Status: corev1.PodStatus{Conditions: tc.tenant}}
			for _, g := range tc.gates {
				tp.Spec.ReadinessGates = append(tp.Spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: g})
			}
			up := slices.Clone(tc.up)
			got := tenantReady(corev1.PodStatus{Conditions: up}, tp, now)
			if diff := cmp.Diff(tc.want, got.Conditions); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.up, up); diff != "" {
				t.Errorf("tenantReady changed its input (-before +after):\n%s", diff)
			}
		})
	}
}
