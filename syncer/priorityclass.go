package syncer

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// PriorityClasses: up only. Every PriorityClass the operator publishes (label
// tenancy.vnest.dev/published=true) is copied into every tenant, where pods can then name it;
// such pods keep their priorityClassName on the way down (withPublishedPriorityClass), and the
// super cluster's own admission resolves it to the same value. The copy is removed when the
// super class is deleted or unlabelled. Classes named system-… are never copied: every tenant
// has its own, and the tenant apiserver refuses to create others. A tenant PriorityClass of the
// same name that the syncer did not make is left alone.

// systemPriorityClassPrefix starts the names reserved for the built-in priority classes.
const systemPriorityClassPrefix = "system-"

// translatePriorityClass is the tenant copy of a published PriorityClass; ok is false for a
// class that is not copied.
func translatePriorityClass(pc *schedulingv1.PriorityClass) (copied *schedulingv1.PriorityClass, ok bool) {
	if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
		return nil, false
	}
	c := pc.DeepCopy()
	return &schedulingv1.PriorityClass{
		ObjectMeta:       mirrorMeta(pc),
		Value:            c.Value,
		GlobalDefault:    c.GlobalDefault,
		Description:      c.Description,
		PreemptionPolicy: c.PreemptionPolicy,
	}, true
}

var priorityClassUp = mirror[*schedulingv1.PriorityClass]{
	kind: kindPriorityClass,
	equal: func(desired, existing *schedulingv1.PriorityClass) bool {
		return mirrorMetaEqual(desired, existing) && desired.GlobalDefault == existing.GlobalDefault &&
			desired.Description == existing.Description
	},
	immutableChanged: func(desired, existing *schedulingv1.PriorityClass) bool {
		// A nil preemption policy is defaulted on create; compare only a set one.
		return desired.Value != existing.Value ||
			(desired.PreemptionPolicy != nil && !apiequality.Semantic.DeepEqual(desired.PreemptionPolicy, existing.PreemptionPolicy))
	},
	merge: func(desired, existing *schedulingv1.PriorityClass) *schedulingv1.PriorityClass {
		out := existing.DeepCopy()
		out.Labels, out.Annotations = desired.Labels, desired.Annotations
		out.GlobalDefault, out.Description = desired.GlobalDefault, desired.Description
		return out
	},
}

func (s *Syncer) syncPriorityClass(ctx context.Context, t *tenant, name string) error {
	if strings.HasPrefix(name, systemPriorityClassPrefix) {
		return nil // never copied: the tenant's own, whatever labels it has (nor can it be deleted)
	}
	pc, published, err := lookup(s.superPCs.Get(name))
	if err != nil {
		return err
	}
	tc, has, err := lookup(t.pcs.Get(name))
	if err != nil {
		return err
	}
	var desired *schedulingv1.PriorityClass
	if published {
		desired, published = translatePriorityClass(pc)
	}
	_, _, err = priorityClassUp.sync(ctx, t, t.client.SchedulingV1().PriorityClasses(), desired, published, tc, has)
	return inTenant(err)
}

// publishedPriorityClass reports whether the tenant's PriorityClass name is a copy of a
// published one. The tenant's admission resolved the pod's priority from that copy, so the
// super cluster's class of the same name gives it the same priority. The tenant can label any
// class of its own as a mirror, so the mirror label alone proves nothing: the super cluster
// must publish the class too, and a system- class is never published (a tenant naming
// system-node-critical would preempt other tenants' pods).
func (t *tenant) publishedPriorityClass(name string) bool {
	if name == "" || t.pcs == nil || t.superPCs == nil || strings.HasPrefix(name, systemPriorityClassPrefix) {
		return false
	}
	if _, err := t.superPCs.Get(name); err != nil {
		return false
	}
	pc, err := t.pcs.Get(name)
	return err == nil && isMirror(pc)
}

// withPublishedPriorityClass keeps a tenant pod's priorityClassName on its super pod when the
// class is published. The priority value and preemption policy stay unset: the super
// cluster's admission fills them in from its class (and would refuse a value that differs).
func withPublishedPriorityClass(super, tenantPod *corev1.Pod, published bool) *corev1.Pod {
	if published {
		super.Spec.PriorityClassName = tenantPod.Spec.PriorityClassName
	}
	return super
}
