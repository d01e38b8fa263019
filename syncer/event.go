package syncer

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Events: up only. Events the super cluster records about a tenant's synced pods, services,
// claims and ingresses (scheduling, image pulls, container starts, probe failures, volume
// provisioning and binding, ingress controller syncs…) are copied to the tenant, about
// the tenant object, so `kubectl describe` in the tenant tells the story. Super events carry no
// ownership labels; they are the tenant's when their namespace is one of the tenant's super
// namespaces and the object they are about is the tenant's. The syncer caches only the events of
// namespaces named like super namespaces (superEventCache). Events are never deleted by the
// syncer: both sides expire them by their own TTL.

const kindEvent kind = "Event"

// keepSuperEvent reports whether the syncer caches the super events of namespace ns: those of a
// namespace named like a super namespace, a cluster key and '-' (mapping.SuperNamespace keeps
// that prefix when it truncates). By the name alone, so it is true of every VirtualCluster's
// namespaces before the syncer's namespace and VirtualCluster caches have them (a namespace the
// syncer has just made, a VirtualCluster another syncer serves during a rollout), and an event's
// add, updates and delete all go the same way. A foreign namespace named alike is kept too; the
// readers tell it apart by its ownership labels, as they always did. A hand-written
// status.clusterKey that ClusterKey would not make is not of the shape (v1alpha1.IsClusterKey):
// its tenants' events are not copied up.
func keepSuperEvent(ns string) bool {
	for i := 1; i < len(ns) && i <= v1alpha1.MaxClusterKeyLength; i++ {
		if ns[i] == '-' && v1alpha1.IsClusterKey(ns[:i]) {
			return true
		}
	}
	return false
}

// superEventCache holds the super events the syncer may copy up: the store of a reflector on all
// super events that keeps, without managed fields, those keepSuperEvent accepts and drops the
// rest as they come, so the syncer's memory does not grow with what the rest of a shared super
// cluster records. Events carry no labels to select on, so an informer would hold every event
// of the super cluster; a stub of key and version in place of each foreign one would still cost
// most of a full event (BenchmarkCachedEventBytes).
type superEventCache struct {
	cache.Indexer               // the kept events, by namespace/name and indexed by namespace
	changed       func(obj any) // called with each event kept, listed or watched (enqueueSuperEvent)
	reflector     *cache.Reflector
	synced        atomic.Bool
}

func newSuperEventCache(super kubernetes.Interface, changed func(obj any)) *superEventCache {
	c := &superEventCache{
		Indexer: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}),
		changed: changed,
	}
	events := super.CoreV1().Events(metav1.NamespaceAll)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return events.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return events.Watch(ctx, o)
		},
	}
	c.reflector = cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, super), &corev1.Event{}, c,
		cache.ReflectorOptions{Name: "super events", TypeDescription: "*v1.Event"})
	return c
}

// run fills the cache until ctx ends.
func (c *superEventCache) run(ctx context.Context) { c.reflector.RunWithContext(ctx) }

// hasSynced reports whether the first list is in.
func (c *superEventCache) hasSynced() bool { return c.synced.Load() }

// keptEvent is obj without managed fields if the cache keeps it.
func keptEvent(obj any) (*corev1.Event, bool) {
	ev, ok := obj.(*corev1.Event)
	if !ok || !keepSuperEvent(ev.Namespace) {
		return nil, false
	}
	_, _ = dropManagedFields(ev)
	return ev, true
}

func (c *superEventCache) Add(obj any) error { return c.Update(obj) }

func (c *superEventCache) Update(obj any) error {
	ev, ok := keptEvent(obj)
	if !ok {
		return nil
	}
	if err := c.Indexer.Update(ev); err != nil {
		return err
	}
	c.changed(ev)
	return nil
}

// Replace puts the kept events of a (re)list in place of the cache's and passes each on, as an
// informer calls its handlers for every listed object. Delete is the Indexer's: a dropped event
// is not there to delete.
func (c *superEventCache) Replace(list []any, resourceVersion string) error {
	keep := make([]any, 0, len(list))
	for _, obj := range list {
		if ev, ok := keptEvent(obj); ok {
			keep = append(keep, ev)
		}
	}
	if err := c.Indexer.Replace(keep, resourceVersion); err != nil {
		return err
	}
	c.synced.Store(true)
	for _, ev := range keep {
		c.changed(ev)
	}
	return nil
}

func (c *superEventCache) Resync() error { return nil }

// droppedEvent is what a foreign event becomes in the reflector's stores (Transformer).
const droppedEvent = cache.ExplicitKey("")

// Transformer makes the cache a cache.TransformingStore: the reflector applies it to the events
// of its first list (and of a relist) as they stream in (client-go's watch-list, on by default
// since 1.35, where the apiserver serves it), in the store it gathers them in before it calls
// Replace. A foreign event becomes droppedEvent there, so until the last has come the list holds
// its key and an empty string for each, not the whole event (BenchmarkCachedEventBytes). A list
// served in one response (an apiserver without watch-list) is still decoded whole first; Replace
// drops the foreign events then.
func (c *superEventCache) Transformer() cache.TransformFunc {
	return func(obj any) (any, error) {
		if ev, ok := keptEvent(obj); ok {
			return ev, nil
		}
		return droppedEvent, nil
	}
}

// translateEvent is the tenant event for a super event about the super counterpart of a tenant
// object (tenantUID) in tenant namespace ns. Super namespace names in the message are replaced
// by the tenant's.
func translateEvent(se *corev1.Event, ns string, tenantUID types.UID) *corev1.Event {
	ref := se.InvolvedObject
	ref.Namespace, ref.UID, ref.ResourceVersion = ns, tenantUID, ""
	return &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: ns, Name: se.Name},
		InvolvedObject:      ref,
		Reason:              se.Reason,
		Message:             strings.ReplaceAll(se.Message, se.Namespace, ns),
		Source:              se.Source,
		FirstTimestamp:      se.FirstTimestamp,
		LastTimestamp:       se.LastTimestamp,
		Count:               se.Count,
		Type:                se.Type,
		EventTime:           se.EventTime,
		Series:              se.Series,
		Action:              se.Action,
		ReportingController: se.ReportingController,
		ReportingInstance:   se.ReportingInstance,
	}
}

// eventUpEqual reports whether the tenant event already says what desired says.
func eventUpEqual(desired, existing *corev1.Event) bool {
	return desired.Count == existing.Count && desired.Message == existing.Message &&
		desired.LastTimestamp.Equal(&existing.LastTimestamp) && desired.Reason == existing.Reason
}

// queueSuperEvents queues the super events in tenant t's super namespaces that the tenant does
// not have as they are. The event handler queues an event only for a tenant the syncer serves;
// this, run when the syncer starts serving t, brings up the events recorded before: while the
// syncer was down, or before t was served. Syncing an event costs a tenant request or two, so
// it lists each namespace's tenant events once (from the tenant apiserver's cache) and queues
// only those missing or changed; all of a namespace's when that list fails. The patrol does not
// queue events.
func (s *Syncer) queueSuperEvents(ctx context.Context, t *tenant) {
	namespaces, err := s.superIndex[kindNamespace].ByIndex(indexTenant, t.key)
	if err != nil {
		return
	}
	for _, obj := range namespaces {
		ns, ok := obj.(*corev1.Namespace)
		if !ok {
			continue
		}
		tenantNS, ok := mapping.TenantNamespace(ns, t.key)
		if !ok {
			continue
		}
		events, err := s.superEvents.Events(ns.Name).List(labels.Everything())
		if err != nil || len(events) == 0 {
			continue
		}
		have := map[string]*corev1.Event{}
		// The VirtualCluster worker runs this: a tenant that does not answer must not hold it.
		listCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		list, err := t.client.CoreV1().Events(tenantNS).List(listCtx, metav1.ListOptions{ResourceVersion: "0"})
		cancel()
		if err == nil {
			for i := range list.Items {
				have[list.Items[i].Name] = &list.Items[i]
			}
		} else {
			klog.FromContext(ctx).V(2).Info("Cannot list the tenant's events; queueing all super events of the namespace", "tenant", t.key, "namespace", tenantNS, "err", err)
		}
		for _, ev := range events {
			if existing, ok := have[ev.Name]; ok && eventUpEqual(translateEvent(ev, tenantNS, ""), existing) {
				continue
			}
			s.queue.Add(t.key, objKey{Kind: kindEvent, Namespace: tenantNS, Name: ev.Name})
		}
	}
}

// enqueueSuperEvent maps a super event to the tenant owning its namespace.
func (s *Syncer) enqueueSuperEvent(obj any) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return
	}
	ns, err := s.superNS.Get(ev.Namespace)
	if err != nil {
		return
	}
	for _, t := range s.servingTenants() {
		if tenantNS, ok := mapping.TenantNamespace(ns, t.key); ok {
			s.queue.Add(t.key, objKey{Kind: kindEvent, Namespace: tenantNS, Name: ev.Name})
			return
		}
	}
}

// tenantUIDFor returns the UID of the tenant object a super event is about, if the syncer
// synced it: the super object must be the tenant's and made from that tenant object.
func (s *Syncer) tenantUIDFor(t *tenant, ns string, ref corev1.ObjectReference) (types.UID, bool) {
	var super, tenantObj metav1.Object
	var ok bool
	switch ref.Kind {
	case "Pod":
		super, tenantObj, ok = pair(s.superPods.Pods(ref.Namespace).Get, t.pods.Pods(ns).Get, ref.Name)
	case "Service":
		super, tenantObj, ok = pair(s.superSvcs.Services(ref.Namespace).Get, t.services.Services(ns).Get, ref.Name)
	case "PersistentVolumeClaim": // provisioning, binding, resizing
		super, tenantObj, ok = pair(s.superPVCs.PersistentVolumeClaims(ref.Namespace).Get, t.pvcs.PersistentVolumeClaims(ns).Get, ref.Name)
	case "Ingress": // the super cluster's ingress controller
		super, tenantObj, ok = pair(s.superIngresses.Ingresses(ref.Namespace).Get, t.ingresses.Ingresses(ns).Get, ref.Name)
	}
	if !ok || guard(t, ns, super) != nil || mapping.TenantUID(super) != tenantObj.GetUID() {
		return "", false
	}
	return tenantObj.GetUID(), true
}

// pair looks name up with a super and a tenant lister Get; ok is false unless both have it.
func pair[T metav1.Object](superGet, tenantGet func(string) (T, error), name string) (super, tenantObj metav1.Object, ok bool) {
	sp, err := superGet(name)
	if err != nil {
		return nil, nil, false
	}
	tp, err := tenantGet(name)
	if err != nil {
		return nil, nil, false
	}
	return sp, tp, true
}

func (s *Syncer) syncEvent(ctx context.Context, t *tenant, ns, name string) error {
	superNS := mapping.SuperNamespace(t.key, ns)
	se, found, err := lookup(s.superEvents.Events(superNS).Get(name))
	if err != nil || !found || se.InvolvedObject.Namespace != superNS {
		return err
	}
	uid, ok := s.tenantUIDFor(t, ns, se.InvolvedObject)
	if !ok || t.namespaceTerminating(ns) {
		return nil
	}
	want := translateEvent(se, ns, uid)
	events := t.client.CoreV1().Events(ns)
	if se.Count <= 1 && se.Series == nil {
		// Seen once: almost always new to the tenant, so create it without reading first
		// (one request, not two, per event: most events are of this kind).
		_, err := events.Create(ctx, want, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return ignoreNamespaceTerminating(err)
		}
	}
	existing, err := events.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = events.Create(ctx, want, metav1.CreateOptions{})
		return ignoreNamespaceTerminating(ignoreAlreadyExists(err))
	}
	if err != nil || eventUpEqual(want, existing) {
		return err
	}
	up := existing.DeepCopy()
	up.Count, up.Message, up.LastTimestamp, up.Reason, up.Series = want.Count, want.Message, want.LastTimestamp, want.Reason, want.Series
	_, err = events.Update(ctx, up, metav1.UpdateOptions{})
	return err
}

// ignoreNamespaceTerminating drops the tenant's refusal of an event in a tenant namespace being
// deleted, which the tenant cache did not show yet (namespaceTerminating, checked before): the
// tenant apiserver takes nothing new there, and the namespace's events go with it. Retrying
// would only log the refusal again until the super event went too.
func ignoreNamespaceTerminating(err error) error {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return nil
	}
	return err
}
