package syncer

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// Pod generation and observed generation.
//
// A tenant pod's metadata.generation and its super pod's count different histories: a tenant
// spec change the syncer does not carry down (a resize the tenant's quota holds back, a resize,
// an ephemeral container or tolerations the super cluster refused) bumps only the tenant's, and
// the super pod counts each write of its spec (a down update, a resize) once. So the super pod
// carries, in annotationTenantGeneration, the tenant generation its spec reflects: set when it
// is created and on every down update, which writes it in the same request as the spec fields
// it carries, and only after the resize and ephemeral container writes of that generation went
// through (syncPod writes those first, one per round). The observed generations the super
// kubelet reports (status.observedGeneration, conditions[].observedGeneration) come up mapped:
// the super pod's current generation becomes the annotation's tenant generation; an older one
// (the kubelet has not seen the latest super spec yet) keeps the tenant pod's previous value, so
// the tenant never reads a generation as observed before the kubelet acted on it.

// annotationTenantGeneration holds, on a super pod, the tenant pod generation its spec reflects.
const annotationTenantGeneration = ownership.ReservedPrefix + "tenant-generation"

// withTenantGeneration stamps super pod sp (translated from tenant pod tp) with tp's generation.
func withTenantGeneration(sp, tp *corev1.Pod) *corev1.Pod {
	if tp.Generation <= 0 {
		return sp
	}
	if sp.Annotations == nil {
		sp.Annotations = map[string]string{}
	}
	sp.Annotations[annotationTenantGeneration] = strconv.FormatInt(tp.Generation, 10)
	return sp
}

// tenantGenerationBehind reports whether tenant pod tp's spec changed since super pod sp was last
// written from it: tp's generation is newer than the one sp carries (false when sp carries none).
func tenantGenerationBehind(sp, tp *corev1.Pod) bool {
	g, err := strconv.ParseInt(sp.Annotations[annotationTenantGeneration], 10, 64)
	return err == nil && tp.Generation > g
}

// tenantObservedGenerations rewrites the observed generations of st (the status podStatusUp
// made of super pod sp) into tenant pod tp's generations.
func tenantObservedGenerations(st corev1.PodStatus, sp, tp *corev1.Pod) corev1.PodStatus {
	tenantGen, err := strconv.ParseInt(sp.Annotations[annotationTenantGeneration], 10, 64)
	known := err == nil && tenantGen > 0
	mapGen := func(superGen, previous int64) int64 {
		if known && superGen != 0 && superGen == sp.Generation {
			return tenantGen
		}
		return previous
	}
	st.ObservedGeneration = mapGen(st.ObservedGeneration, tp.Status.ObservedGeneration)
	st.Conditions = slices.Clone(st.Conditions)
	for i, c := range st.Conditions {
		var previous int64
		for _, old := range tp.Status.Conditions {
			if old.Type == c.Type {
				previous = old.ObservedGeneration
				break
			}
		}
		st.Conditions[i].ObservedGeneration = mapGen(c.ObservedGeneration, previous)
	}
	return st
}
