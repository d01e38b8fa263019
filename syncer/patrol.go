package syncer

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/syncer/mapping"
)

// The patrol: every resync period, for every tenant and kind, both sides are listed from the
// caches and every key found on either side is queued. The reconcilers are level-triggered, so
// this repairs whatever an event missed (a syncer restart, a dropped watch, a hand edit in the
// super cluster) and deletes orphans: super objects whose tenant object is gone. The keys whose
// counterpart is missing, or was made from another incarnation of the tenant object, are counted
// as drift.

// alwaysSynced are the kinds whose every tenant object has a super counterpart; for the others
// (scoped Secrets and ConfigMaps, Endpoints of selector-less Services, virtual nodes) a missing
// counterpart may be right and is not counted as drift.
var alwaysSynced = map[kind]bool{kindNamespace: true, kindPod: true, kindService: true, kindPVC: true}

func (s *Syncer) patrolAll(ctx context.Context) {
	for _, t := range s.servingTenants() {
		s.patrol(ctx, t)
	}
}

// patrol queues every key of tenant t and records the drift it saw.
func (s *Syncer) patrol(ctx context.Context, t *tenant) {
	for _, k := range allKinds {
		s.patrolKind(ctx, t, k)
	}
}

// patrolKind queues every key of kind k of tenant t, on both sides, and records the drift it
// saw.
func (s *Syncer) patrolKind(ctx context.Context, t *tenant, k kind) {
	drift := 0
	tenantObjs := map[objKey]metav1.Object{}
	for _, obj := range t.index[k].List() {
		m, err := metaOf(obj)
		if err != nil {
			continue
		}
		key := tenantKey(k, m)
		tenantObjs[key] = m
		s.queue.Add(t.key, key)
	}
	drift += s.patrolPublished(t, k, tenantObjs)
	superSeen := map[objKey]bool{}
	if idx := s.superIndex[k]; idx != nil {
		objs, _ := idx.ByIndex(indexTenant, t.key)
		for _, obj := range objs {
			m, err := metaOf(obj)
			if err != nil {
				continue
			}
			key, ok := superKey(k, m, t.key)
			if !ok {
				continue
			}
			superSeen[key] = true
			s.queue.Add(t.key, key)
			if key.Kind != k { // a pod's token Secret: its counterpart is the pod
				if _, exists, _ := t.index[key.Kind].GetByKey(key.Namespace + "/" + key.Name); !exists && !s.namespaceGoing(t, key) {
					drift++
				}
				continue
			}
			tm, exists := tenantObjs[key]
			if (!exists || (mapping.TenantUID(m) != "" && mapping.TenantUID(m) != tm.GetUID())) && !s.namespaceGoing(t, key) {
				drift++
			}
		}
	}
	if alwaysSynced[k] {
		for key := range tenantObjs {
			if !superSeen[key] && !s.namespaceGoing(t, key) {
				drift++
			}
		}
	}
	s.metrics.patrolDrift(t.key, k, drift)
	if drift > 0 {
		klog.FromContext(ctx).V(2).Info("Patrol found drift", "tenant", t.key, "kind", k, "keys", drift)
	}
}

// namespaceGoing reports whether key's tenant namespace (key's own name for a namespace) or its
// super namespace is being deleted. Its keys are no drift then: the syncer deletes the super
// namespace as the tenant's starts terminating and creates nothing in it (namespaceTerminating),
// and a super namespace being deleted takes its objects with it; a tenant namespace made again
// under the name gets its objects down once the old super namespace is gone (retryWaitingIn).
func (s *Syncer) namespaceGoing(t *tenant, key objKey) bool {
	ns := key.Namespace
	if key.Kind == kindNamespace {
		ns = key.Name
	}
	if ns == "" {
		return false
	}
	if t.namespaceTerminating(ns) {
		return true
	}
	sn, err := s.superNS.Get(mapping.SuperNamespace(t.key, ns))
	return err == nil && sn.DeletionTimestamp != nil
}

// tenantKey is the queue key of a tenant object.
func tenantKey(k kind, m metav1.Object) objKey {
	return objKey{Kind: k, Namespace: m.GetNamespace(), Name: m.GetName()}
}

// superKey is the queue key of the tenant object a super object belongs to; the tenant
// namespace comes from the ownership labels.
func superKey(k kind, m metav1.Object, clusterKey string) (objKey, bool) {
	switch {
	case k == kindRuntimeClass: // cluster-scoped, per-tenant name (runtimeclass.go)
		name, ok := mapping.TenantName(m, clusterKey)
		return objKey{Kind: k, Name: name}, ok
	case k == kindEndpointSlice && controllerManagedSlice(m): // copied labels (endpointslice.go)
		return objKey{}, false
	}
	ns, ok := mapping.TenantNamespace(m, clusterKey)
	if !ok {
		return objKey{}, false
	}
	if k == kindNamespace {
		return objKey{Kind: k, Name: ns}, true
	}
	if pod, ok := isTokenSecret(m); ok && k == kindSecret { // a pod's token (podtoken.go)
		return objKey{Kind: kindPod, Namespace: ns, Name: pod}, true
	}
	return objKey{Kind: k, Namespace: ns, Name: m.GetName()}, true
}
