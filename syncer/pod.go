package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Pods.
//
// Down: the tenant pod's spec, translated (translatePod), created in the super namespace with
// nodeName empty so the super cluster's scheduler places it. Later changes propagate for the
// fields a pod may change: labels, annotations, container images, activeDeadlineSeconds, added
// tolerations, removed scheduling gates and, while the super pod is gated, the scheduling
// directives (podplacement.go); and resources and ephemeral containers through their
// subresources (podresize.go, podephemeral.go).
//
// Up: once the super pod is scheduled, the tenant pod is bound to the same node through the
// tenant's pods/binding subresource (after its virtual node exists); its status mirrors the
// super pod's, with the tenant's own conditions kept and Ready counting the tenant's readiness
// gates (podconditions.go).
//
// Deletion: a terminating tenant pod deletes the super pod with the same grace period (UID
// precondition); when the super pod is gone the syncer finishes the tenant pod's deletion, as
// a kubelet would. A super pod that disappears under a running tenant pod (deleted by hand,
// evicted) makes the syncer mark the tenant pod Failed and delete it, so the tenant's
// controller replaces it: a bound pod cannot move to another node, so the syncer never
// recreates the super pod of a pod that ran. A finished (Succeeded/Failed) tenant pod is left as
// it is.

// kubeAPIAccessPrefix starts the name of the projected service-account token volume the
// tenant's admission adds. Its token is for the tenant apiserver and the super kubelet cannot
// mint it, so it is dropped; a later change mounts tenant tokens.
const kubeAPIAccessPrefix = "kube-api-access-"

// Index names of the tenant pod indexer: the ConfigMaps and Secrets pods use, as "ns/name".
const (
	indexPodConfigMaps = "configMaps"
	indexPodSecrets    = "secrets"
)

var podReferenceIndexers = cache.Indexers{
	indexPodConfigMaps: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, nil
		}
		cms, _ := podReferences(p)
		return namespaced(p.Namespace, cms), nil
	},
	indexPodSecrets: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, nil
		}
		_, secrets := podReferences(p)
		return namespaced(p.Namespace, secrets), nil
	},
}

func namespaced(ns string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = ns + "/" + n
	}
	return out
}

// podReferences lists the ConfigMaps and Secrets a pod uses once translated: volumes
// (including projected sources), env and envFrom of all containers, image pull secrets. The
// dropped service-account token volume does not count. Sorted, without duplicates.
func podReferences(p *corev1.Pod) (configMaps, secrets []string) {
	cm, sec := map[string]struct{}{}, map[string]struct{}{}
	for _, v := range p.Spec.Volumes {
		if isServiceAccountTokenVolume(v) {
			continue
		}
		switch {
		case v.ConfigMap != nil:
			cm[v.ConfigMap.Name] = struct{}{}
		case v.Secret != nil:
			sec[v.Secret.SecretName] = struct{}{}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					cm[src.ConfigMap.Name] = struct{}{}
				}
				if src.Secret != nil {
					sec[src.Secret.Name] = struct{}{}
				}
			}
		}
	}
	containers := slices.Concat(p.Spec.InitContainers, p.Spec.Containers, ephemeralContainers(p.Spec.EphemeralContainers))
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				cm[e.ConfigMapRef.Name] = struct{}{}
			}
			if e.SecretRef != nil {
				sec[e.SecretRef.Name] = struct{}{}
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				cm[r.Name] = struct{}{}
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				sec[r.Name] = struct{}{}
			}
		}
	}
	for _, r := range p.Spec.ImagePullSecrets {
		sec[r.Name] = struct{}{}
	}
	delete(cm, "")
	delete(sec, "")
	return slices.Sorted(maps.Keys(cm)), slices.Sorted(maps.Keys(sec))
}

// isServiceAccountTokenVolume reports whether v is the tenant admission's kube-api-access
// projected volume.
func isServiceAccountTokenVolume(v corev1.Volume) bool {
	if !strings.HasPrefix(v.Name, kubeAPIAccessPrefix) || v.Projected == nil {
		return false
	}
	return slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil })
}

// translatePod is the super pod for a tenant pod: same name in the super namespace, stamped
// metadata, and a spec the super cluster can run and schedule itself.
// node is the super node of the tenant's spec.nodeName, if the tenant named one and it exists.
func translatePod(p *corev1.Pod, owner mapping.Owner, policy v1alpha1.PolicySpec, node *corev1.Node) *corev1.Pod {
	spec := p.Spec.DeepCopy()
	tenantDownwardAPI(spec, p) // podenv.go

	// The tenant's token volumes get tenant tokens from the pod's token Secret (podtoken.go);
	// the tenant service account means nothing in the super cluster, and the super cluster's own
	// token must never be mounted.
	projectTenantTokens(spec, p.Name)
	spec.EphemeralContainers = nil // added only through their subresource (podephemeral.go)
	// A readiness gate's condition is set in the tenant and never reaches the super pod, whose
	// kubelet would hold Ready at False for ever; the tenant's Ready counts the gates instead
	// (tenantReady, podconditions.go).
	spec.ReadinessGates = nil
	spec.ServiceAccountName = ""
	spec.DeprecatedServiceAccount = ""
	spec.AutomountServiceAccountToken = ptr.To(false)
	// The super scheduler places the pod; a node the tenant named itself (virtual node names are
	// super node names) is placePod's, below.
	spec.SchedulerName = ""
	// Priority classes are the super cluster's; the tenant's resolved priority would be
	// rejected by the super cluster's admission. (A published class is kept: see
	// withPublishedPriorityClass.)
	spec.Priority = nil
	spec.PriorityClassName = ""
	spec.PreemptionPolicy = nil
	spec.RuntimeClassName = superRuntimeClassName(owner.ClusterKey, spec.RuntimeClassName) // runtimeclass.go
	// Service links would inject the super namespace's services; tenant services come later.
	spec.EnableServiceLinks = ptr.To(false)

	if len(policy.NodeSelector) > 0 {
		if spec.NodeSelector == nil {
			spec.NodeSelector = map[string]string{}
		}
		maps.Copy(spec.NodeSelector, policy.NodeSelector) // the policy wins
	}
	for _, tol := range policy.Tolerations {
		if !slices.ContainsFunc(spec.Tolerations, func(x corev1.Toleration) bool { return x.MatchToleration(&tol) }) {
			spec.Tolerations = append(spec.Tolerations, tol)
		}
	}
	placePod(spec, node) // podpolicy.go
	return &corev1.Pod{ObjectMeta: mapping.SuperMeta(p, owner), Spec: *spec}
}

// podDownEqual compares what the down sync updates on an existing super pod.
func podDownEqual(desired, existing *corev1.Pod) bool {
	directives, _ := gatedDirectives(&desired.Spec, &existing.Spec) // podplacement.go
	return stampedMetaEqual(desired, existing) && slices.Equal(images(desired), images(existing)) &&
		ptr.Equal(desired.Spec.ActiveDeadlineSeconds, existing.Spec.ActiveDeadlineSeconds) &&
		len(keptSchedulingGates(desired, existing)) == len(existing.Spec.SchedulingGates) && directives == nil &&
		len(tolerationsDown(desired, existing)) == 0
}

// mergePod writes desired's labels, annotations, images, activeDeadlineSeconds, added
// tolerations (tolerationsDown: not those the super cluster refused) and removed scheduling
// gates into a copy of existing, and, while existing is gated, its scheduling directives
// (gatedDirectives: in the same request as the removal of the last gate, so they are there
// before the super scheduler looks); the other spec fields the syncer sets are immutable.
func mergePod(desired, existing *corev1.Pod) *corev1.Pod {
	out := existing.DeepCopy()
	mergeMeta(desired, out)
	if d, _ := gatedDirectives(&desired.Spec, &existing.Spec); d != nil {
		out.Spec.NodeSelector, out.Spec.Affinity, out.Spec.Tolerations = d.NodeSelector, d.Affinity, d.Tolerations
	}
	out.Spec.Tolerations = append(out.Spec.Tolerations, tolerationsDown(desired, out)...) // podplacement.go
	out.Spec.ActiveDeadlineSeconds = desired.Spec.ActiveDeadlineSeconds
	out.Spec.SchedulingGates = keptSchedulingGates(desired, existing)
	for i := range out.Spec.InitContainers {
		if i < len(desired.Spec.InitContainers) {
			out.Spec.InitContainers[i].Image = desired.Spec.InitContainers[i].Image
		}
	}
	for i := range out.Spec.Containers {
		if i < len(desired.Spec.Containers) {
			out.Spec.Containers[i].Image = desired.Spec.Containers[i].Image
		}
	}
	return out
}

// keptSchedulingGates are the scheduling gates of super pod existing that desired still has: a
// gate the tenant removed goes (the super scheduler waits for the super pod's gates, not the
// tenant's), and none is ever added, which the super apiserver would refuse after creation.
func keptSchedulingGates(desired, existing *corev1.Pod) []corev1.PodSchedulingGate {
	var out []corev1.PodSchedulingGate
	for _, g := range existing.Spec.SchedulingGates {
		if slices.ContainsFunc(desired.Spec.SchedulingGates, func(d corev1.PodSchedulingGate) bool { return d.Name == g.Name }) {
			out = append(out, g)
		}
	}
	return out
}

func images(p *corev1.Pod) []string {
	var out []string
	for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
		out = append(out, c.Image)
	}
	return out
}

var podDown = down[*corev1.Pod]{
	kind: kindPod,
	translate: func(t *tenant, p *corev1.Pod) *corev1.Pod {
		p = t.onTenantNodes(p) // nodelabels.go, nodetaints.go
		sp := withPublishedPriorityClass(translatePod(p, t.owner, t.settings.Load().policy, t.superNode(p.Spec.NodeName)), p, t.publishedPriorityClass(p.Spec.PriorityClassName))
		withTenantGeneration(sp, p)                                           // podgeneration.go
		podDNS(&sp.Spec, p.Namespace, t.settings.Load().domain, t.nameserver) // dns.go
		return withEnv(sp, t.tenantEnv(p))                                    // podenv.go
	},
	equal:   podDownEqual,
	merge:   mergePod,
	refused: takeBackTolerations, // podplacement.go
	created: recordDNSOmitted,    // dns.go
}

// podStatusUp is the status the tenant pod should have for a super pod: the super pod's, which
// the tenant's controllers read (phase, conditions, IPs, container states, start time).
func podStatusUp(super *corev1.Pod) corev1.PodStatus {
	st := *super.Status.DeepCopy()
	st.NominatedNodeName = "" // a super-cluster scheduling detail
	return st
}

// ranInSuper reports whether a tenant pod has run from a super pod: it is bound and its status
// came up from the super cluster. Such a pod is never created again in the super cluster.
func ranInSuper(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.Status.HostIP != ""
}

func podTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func (s *Syncer) syncPod(ctx context.Context, t *tenant, ns, name string) error {
	tp, hasTenant, err := t.podWrites.statuses.get(ns, name) // podwrites.go
	if err != nil {
		return err
	}
	superNS := mapping.SuperNamespace(t.key, ns)
	sp, hasSuper, err := lookup(s.superPods.Pods(superNS).Get(name))
	if err != nil {
		return err
	}
	if hasSuper {
		sp = s.withRefusalsDue(t, sp) // podrefused.go: what was refused is tried again when due
	}
	w := s.super.CoreV1().Pods(superNS)
	st := state[*corev1.Pod]{tenantNS: ns, tenant: tp, hasTenant: hasTenant, super: sp, hasSuper: hasSuper}
	if hasSuper && guard(t, ns, sp) != nil {
		return podDown.sync(ctx, s, t, w, st) // records the event, writes nothing
	}
	sameUID := hasTenant && hasSuper && mapping.TenantUID(sp) == tp.UID
	switch {
	case hasTenant && tp.DeletionTimestamp != nil:
		if sameUID {
			if sp.DeletionTimestamp == nil {
				return deleteSuper(ctx, t, w, ns, sp, tp.DeletionGracePeriodSeconds)
			}
			return s.podUp(ctx, t, tp, sp)
		}
		if hasSuper { // an older incarnation's super pod
			return podDown.sync(ctx, s, t, w, st)
		}
		return s.finishTenantPodDeletion(ctx, t, tp)
	case hasTenant && !hasSuper && ranInSuper(tp):
		if podTerminal(tp) && !lostSuperPod(tp) {
			return nil // finished; its super pod is history
		}
		if t.namespaceTerminating(ns) {
			// Gone with its super namespace, which goes as the tenant's starts terminating: not
			// lost to the super cluster. The tenant's namespace controller deletes the pod, and
			// the deletion is finished above.
			return nil
		}
		klog.FromContext(ctx).Info("Super pod is gone; failing and deleting the tenant pod so its controller replaces it")
		return s.failLostTenantPod(ctx, t, tp)
	}
	if !hasSuper && (!hasTenant || tp.DeletionTimestamp != nil || podTerminal(tp)) {
		if err := s.deletePodToken(ctx, t, ns, name); err != nil {
			return err
		}
	}
	down := func() error { return podDown.sync(ctx, s, t, w, st) }
	if hasTenant && !hasSuper {
		if t.namespaceTerminating(ns) { // down.go: no new super pod, nor policy verdict or token
			return nil
		}
		// A new super pod: the virtual cluster's policy decides first (podpolicy.go).
		return s.createPodDown(ctx, t, tp, down)
	}
	if sameUID && sp.DeletionTimestamp == nil {
		if replaced, err := s.replacePending(ctx, t, tp, sp); replaced || err != nil { // podplacement.go
			return err
		}
		// Resizes and ephemeral containers have their own subresources. They go before the down
		// update, which stamps the tenant generation (podgeneration.go); a write ends the round
		// and its event brings the next.
		for _, sub := range []func(context.Context, *tenant, *corev1.Pod, *corev1.Pod) (bool, error){s.resizePodDown, s.ephemeralContainersDown} {
			if wrote, err := sub(ctx, t, tp, sp); wrote || err != nil {
				return err
			}
		}
	}
	if err := down(); err != nil || !sameUID {
		return err
	}
	// The token goes first (once the pod is bound, its tokens name the node before the tenant
	// sees any status: podtoken.go), but a token that cannot be had does not hold the pod's
	// status back: the error is returned and the round retried.
	var tokenErr error
	if tp.DeletionTimestamp == nil && !podTerminal(tp) {
		tokenErr = s.ensurePodToken(ctx, t, tp)
	}
	return errors.Join(tokenErr, s.podUp(ctx, t, tp, sp))
}

// podUp binds the tenant pod to the super pod's node and copies the status up.
func (s *Syncer) podUp(ctx context.Context, t *tenant, tp, sp *corev1.Pod) error {
	if tp.Spec.NodeName != "" {
		t.podWrites.seenBound(tp.UID)
	}
	if sp.Spec.NodeName != "" && tp.Spec.NodeName == "" && tp.DeletionTimestamp == nil {
		if t.podWrites.bindPending(tp.UID, s.now()) {
			return nil // bound by an earlier round; the bound pod's event brings the next
		}
		// The pod needs its virtual node to exist; keeping the node's status is the node
		// key's work, which a pod sync would only race with (a conflict, and a retry of the pod).
		if _, err := t.nodes.Get(sp.Spec.NodeName); err != nil {
			if err := s.syncNode(ctx, t, sp.Spec.NodeName); err != nil {
				return fmt.Errorf("publishing virtual node %s: %w", sp.Spec.NodeName, err)
			}
		}
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Namespace: tp.Namespace, Name: tp.Name, UID: tp.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: sp.Spec.NodeName},
		}
		err := t.client.CoreV1().Pods(tp.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
		if apierrors.IsConflict(err) {
			// Already bound (by an earlier sync this cache has not caught up with) or no longer
			// this pod (UID): either way the tenant pod's next event brings the next round.
			klog.FromContext(ctx).V(4).Info("Tenant pod already bound or replaced", "err", err)
			return nil
		}
		if err != nil {
			return inTenant(fmt.Errorf("binding the tenant pod to %s: %w", sp.Spec.NodeName, err))
		}
		t.podWrites.bound(tp.UID, s.now())
		return nil // the tenant pod's update event brings the status round
	}
	// podgeneration.go, podconditions.go
	want := keepTenantConditions(tenantObservedGenerations(podStatusUp(sp), sp, tp), tp)
	want = tenantReady(want, tp, metav1.NewTime(s.now()))
	want = refusedResizeStatus(want, sp, tp, metav1.NewTime(s.now())) // podresize.go
	if apiequality.Semantic.DeepEqual(tp.Status, want) {
		return nil
	}
	up := tp.DeepCopy()
	up.Status = want
	written, err := t.client.CoreV1().Pods(tp.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	if err == nil {
		t.podWrites.statuses.wrote(written)
	}
	if apierrors.IsConflict(err) {
		// The tenant pod changed after the cache's copy (a binding or status write of an earlier
		// round the cache has not caught up with, a tenant controller's condition) or was
		// replaced: its event brings the next round, so this is not an error to retry.
		klog.FromContext(ctx).V(4).Info("Tenant pod changed meanwhile; its event brings the next status round", "err", err)
		return nil
	}
	return inTenant(err)
}

// reasonSuperPodDeleted is the reason of the DisruptionTarget condition of a tenant pod whose
// super pod was deleted under it.
const reasonSuperPodDeleted = "DeletionBySuperCluster"

// lostSuperPodStatus is the status of running tenant pod tp once its super pod is gone: Failed,
// with a DisruptionTarget condition, as the pod garbage collector leaves a pod whose node is gone.
func lostSuperPodStatus(tp *corev1.Pod, now metav1.Time) corev1.PodStatus {
	st := *tp.Status.DeepCopy()
	st.Phase = corev1.PodFailed
	st.ObservedGeneration = tp.Generation
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.DisruptionTarget })
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, ObservedGeneration: tp.Generation, LastTransitionTime: now,
		Reason: reasonSuperPodDeleted, Message: "vnest syncer: the pod's copy in the super cluster was deleted",
	})
	return st
}

// failLostTenantPod marks tenant pod tp Failed before deleting it, as the pod garbage collector
// does: a Job's pod failure policy (DisruptionTarget) and podReplacementPolicy=Failed wait for a
// terminal phase, and a Job's pod keeps its job-tracking finalizer until the Job controller has
// seen one. A pod already marked (its deletion failed last round) is only deleted.
func (s *Syncer) failLostTenantPod(ctx context.Context, t *tenant, tp *corev1.Pod) error {
	if !podTerminal(tp) {
		failed := tp.DeepCopy()
		failed.Status = lostSuperPodStatus(tp, metav1.NewTime(s.now()))
		_, err := t.client.CoreV1().Pods(tp.Namespace).UpdateStatus(ctx, failed, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			klog.FromContext(ctx).V(4).Info("Tenant pod changed meanwhile; its event brings the next round", "err", err)
			return nil
		}
		if err != nil {
			return inTenant(ignoreNotFound(err))
		}
	}
	return s.finishTenantPodDeletion(ctx, t, tp)
}

// lostSuperPod reports whether tenant pod tp was marked Failed by failLostTenantPod.
func lostSuperPod(tp *corev1.Pod) bool {
	return slices.ContainsFunc(tp.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.DisruptionTarget && c.Reason == reasonSuperPodDeleted
	})
}

// finishTenantPodDeletion removes the tenant pod at once (grace 0, UID precondition): the
// container is gone in the super cluster, as a kubelet confirms.
func (s *Syncer) finishTenantPodDeletion(ctx context.Context, t *tenant, tp *corev1.Pod) error {
	err := t.client.CoreV1().Pods(tp.Namespace).Delete(ctx, tp.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &tp.UID},
	})
	return inTenant(ignoreNotFound(err))
}
