package syncer

import (
	"context"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
)

// Virtual nodes: up only. For every super node that runs (or is assigned) a pod of the tenant,
// the tenant has a Node of the same name whose status mirrors the super node's: addresses,
// capacity, allocatable, conditions, node info. The syncer refreshes the conditions' heartbeat
// every heartbeat period, since the tenant has no kubelet, and deletes the Node once none of
// the tenant's pods uses it. Only Nodes it labelled as virtual are ever deleted. With the
// kubelet proxy on, the Node's InternalIP and kubelet port are the proxy's (kubeletproxy.go).
// Labels and taints the tenant puts on a virtual Node stay there (nodelabels.go, nodetaints.go).

// virtualNode is the tenant Node for a super node, with heartbeats at now.
// Its taints are the super node's that tolerations (the tenant policy's) do not tolerate.
func virtualNode(super *corev1.Node, tolerations []corev1.Toleration, now metav1.Time) *corev1.Node {
	labels := maps.Clone(super.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ownership.LabelVirtualNode] = "true"
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: super.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Unschedulable: super.Spec.Unschedulable, Taints: shownSuperTaints(super, tolerations)},
		Status: corev1.NodeStatus{
			Addresses:   super.Status.Addresses,
			Capacity:    super.Status.Capacity,
			Allocatable: super.Status.Allocatable,
			Conditions:  make([]corev1.NodeCondition, len(super.Status.Conditions)),
			NodeInfo:    super.Status.NodeInfo,
			Phase:       super.Status.Phase,
		},
	}
	for i, c := range super.Status.Conditions {
		c.LastHeartbeatTime = now
		n.Status.Conditions[i] = c
	}
	return n
}

// nodeStatusEqual compares node statuses ignoring condition heartbeats.
func nodeStatusEqual(a, b corev1.NodeStatus) bool {
	strip := func(st corev1.NodeStatus) corev1.NodeStatus {
		st = *st.DeepCopy()
		for i := range st.Conditions {
			st.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return st
	}
	return apiequality.Semantic.DeepEqual(strip(a), strip(b))
}

// heartbeatAge is how long ago the tenant Node's Ready condition was refreshed.
func heartbeatAge(n *corev1.Node, now time.Time) time.Duration {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return now.Sub(c.LastHeartbeatTime.Time)
		}
	}
	return time.Duration(1<<63 - 1)
}

func (s *Syncer) syncNode(ctx context.Context, t *tenant, name string) error {
	tn, hasTenant, err := lookup(t.nodes.Get(name))
	if err != nil {
		return err
	}
	sn, hasSuper, err := lookup(s.superNodes.Get(name))
	if err != nil {
		return err
	}
	nodes := t.client.CoreV1().Nodes()
	if !hasSuper || !s.tenantUsesNode(t.key, name) {
		if !hasTenant || tn.Labels[ownership.LabelVirtualNode] != "true" {
			return nil
		}
		klog.FromContext(ctx).V(2).Info("Removing unused virtual node")
		return inTenant(ignoreNotFound(nodes.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &tn.UID}})))
	}
	now := metav1.NewTime(s.now().Truncate(time.Second))
	want := virtualNode(sn, t.settings.Load().policy.Tolerations, now)
	withTenantLabels(want, tn, sn) // nodelabels.go
	withTenantTaints(want, tn)     // nodetaints.go
	s.kubeletEndpoint().apply(want)
	if !hasTenant {
		created, err := nodes.Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return inTenant(ignoreAlreadyExists(err))
		}
		created.Status = want.Status
		_, err = nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return inTenant(err)
	}
	if tn.Labels[ownership.LabelVirtualNode] != "true" {
		return nil // a Node the tenant made itself; leave it
	}
	superKeys := []string{ownership.AnnotationSuperLabels, ownership.AnnotationSuperTaints}
	if !apiequality.Semantic.DeepEqual(tn.Labels, want.Labels) || !annotationsEqual(tn, want, superKeys) ||
		!apiequality.Semantic.DeepEqual(tn.Spec.Taints, want.Spec.Taints) || tn.Spec.Unschedulable != want.Spec.Unschedulable {
		up := tn.DeepCopy()
		up.Labels, up.Spec.Taints, up.Spec.Unschedulable = want.Labels, want.Spec.Taints, want.Spec.Unschedulable
		if up.Annotations == nil {
			up.Annotations = map[string]string{}
		}
		for _, k := range superKeys {
			up.Annotations[k] = want.Annotations[k]
		}
		if tn, err = nodes.Update(ctx, up, metav1.UpdateOptions{}); err != nil {
			return inTenant(err)
		}
	}
	if nodeStatusEqual(tn.Status, want.Status) && heartbeatAge(tn, s.now()) < s.heartbeatPeriod()/2 {
		return nil
	}
	up := tn.DeepCopy()
	up.Status = want.Status
	_, err = nodes.UpdateStatus(ctx, up, metav1.UpdateOptions{})
	return inTenant(err)
}

// annotationsEqual reports whether a and b have the same values (or absence) for keys.
func annotationsEqual(a, b *corev1.Node, keys []string) bool {
	for _, k := range keys {
		av, aok := a.Annotations[k]
		bv, bok := b.Annotations[k]
		if av != bv || aok != bok {
			return false
		}
	}
	return true
}

func (s *Syncer) heartbeatPeriod() time.Duration {
	if s.opts == nil {
		return 20 * time.Second
	}
	return s.opts.HeartbeatPeriod
}

// heartbeatAll queues every virtual node of every tenant, and every node a tenant uses.
func (s *Syncer) heartbeatAll(context.Context) {
	for _, t := range s.servingTenants() {
		for _, n := range t.index[kindNode].ListKeys() {
			s.queue.Add(t.key, objKey{Kind: kindNode, Name: n})
		}
		for _, k := range s.superIndex[kindPod].ListIndexFuncValues(indexTenantNode) {
			if node, ok := strings.CutPrefix(k, t.key+"/"); ok {
				s.queue.Add(t.key, objKey{Kind: kindNode, Name: node})
			}
		}
	}
}
