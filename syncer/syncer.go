package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/fairqueue"
)

// kind names a synced kind; it is part of every queue key and a metrics label.
type kind string

const (
	kindNamespace kind = "Namespace"
	kindConfigMap kind = "ConfigMap"
	kindSecret    kind = "Secret"
	kindPod       kind = "Pod"
	kindService   kind = "Service"
	kindEndpoints kind = "Endpoints"
	kindPVC       kind = "PersistentVolumeClaim"
	kindPDB       kind = "PodDisruptionBudget"
	kindIngress   kind = "Ingress"
	kindNode      kind = "Node"

	kindNetworkPolicy kind = "NetworkPolicy"
	kindPV            kind = "PersistentVolume"
	kindStorageClass  kind = "StorageClass"
	kindPriorityClass kind = "PriorityClass"

	kindEndpointSlice kind = "EndpointSlice"
	kindRuntimeClass  kind = "RuntimeClass"
)

// allKinds in the order a new tenant's objects are queued: namespaces first, so that the
// objects in them rarely wait for their namespace.
// Published StorageClasses and PriorityClasses come next: tenant claims and pods name them.
var allKinds = []kind{kindNamespace, kindStorageClass, kindPriorityClass, kindRuntimeClass, kindConfigMap, kindSecret, kindService, kindEndpoints,
	kindEndpointSlice, kindPVC, kindPV, kindPDB, kindIngress, kindNetworkPolicy, kindPod, kindNode}

// objKey is one unit of work within a tenant: a tenant object by kind, tenant namespace and
// name (namespace empty for namespaces and the cluster-scoped kinds, whose name is the name).
type objKey struct {
	Kind      kind
	Namespace string
	Name      string
}

const (
	// indexTenant indexes super objects by the cluster key in their ownership label.
	indexTenant = "tenant"
	// indexTenantNode indexes super pods by "<cluster key>/<node name>".
	indexTenantNode = "tenantNode"
)

// Syncer serves all tenants of one super cluster. Make it with New, start it with Run.
type Syncer struct {
	opts  *completedOptions
	super kubernetes.Interface
	dyn   dynamic.Interface

	superFactory   informers.SharedInformerFactory // objects with an ownership label
	nodeFactory    informers.SharedInformerFactory // super nodes and PVs, unfiltered
	published      informers.SharedInformerFactory // super objects labelled ownership.LabelPublished
	superNS        corelisters.NamespaceLister
	superPods      corelisters.PodLister
	superCMs       corelisters.ConfigMapLister
	superSecrets   corelisters.SecretLister
	superSvcs      corelisters.ServiceLister
	superEps       corelisters.EndpointsLister
	superPVCs      corelisters.PersistentVolumeClaimLister
	superPDBs      policylisters.PodDisruptionBudgetLister
	superIngresses networkinglisters.IngressLister
	superNetPols   networkinglisters.NetworkPolicyLister
	superPVs       corelisters.PersistentVolumeLister
	superSCs       storagelisters.StorageClassLister     // published ones only
	superPCs       schedulinglisters.PriorityClassLister // published ones only
	superNodes     corelisters.NodeLister
	superEvents    corelisters.EventLister // eventCache's: events of super namespaces only
	eventCache     *superEventCache
	superIndex     map[kind]cache.Indexer
	vcLister       cache.Indexer
	// tokenSecrets is superSecrets with the syncer's own writes of pod token Secrets read back
	// (podwrites.go): a pod's syncs come faster than the Secret's events after a write (the
	// bound pod's tokens, then its status), and an update from the cache's older copy would
	// conflict (podtoken.go).
	tokenSecrets ownWrites[*corev1.Secret]

	queue   *fairqueue.Queue[objKey]
	metrics *metrics

	mu      sync.RWMutex
	tenants map[string]*tenant // by cluster key; only tenants whose informers have synced
	vcs     map[string]*tenant // by VirtualCluster "<namespace>/<name>", also while starting
	vcQueue workqueue.TypedRateLimitingInterface[string]
	// vcResync is how often every VirtualCluster is synced again although it did not change
	// (syncVirtualCluster), so that its Secrets are read again: secretRecheckPeriod.
	vcResync time.Duration
	start    dnsStart // the syncer's own start, for the DNS server (dns.go)
	// lease is the heartbeat that tells the manager the syncer runs (lease.go).
	lease *heartbeat

	now func() time.Time
}

// New builds a Syncer from completed options. It starts nothing.
func New(c *completedOptions) (*Syncer, error) {
	super, err := kubernetes.NewForConfig(protobuf(c.super))
	if err != nil {
		return nil, fmt.Errorf("super cluster client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c.super)
	if err != nil {
		return nil, fmt.Errorf("super cluster dynamic client: %w", err)
	}
	s := newSyncer(super, newMetrics(ctrlmetrics.Registry))
	s.opts = c
	s.dyn = dyn
	s.lease = newHeartbeat(super.CoordinationV1(), c.Options, s.now)
	s.lease.renewedAgain = s.resyncHeldBack
	s.queue.LimitPerTenant(c.workersPerTenant())
	return s, nil
}

// newSyncer wires the super-cluster informers and listers of client; tests call it with a fake.
func newSyncer(super kubernetes.Interface, m *metrics) *Syncer {
	owned := informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = ownership.LabelClusterKey })
	f := informers.NewSharedInformerFactoryWithOptions(super, 0, owned, informers.WithTransform(dropManagedFields))
	s := &Syncer{
		super:        super,
		superFactory: f,
		nodeFactory:  informers.NewSharedInformerFactoryWithOptions(super, 0, informers.WithTransform(dropManagedFields)),
		queue:        fairqueue.New[objKey](10*time.Millisecond, time.Minute),
		metrics:      m,
		tenants:      map[string]*tenant{},
		vcs:          map[string]*tenant{},
		vcQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "virtualclusters"}),
		vcResync: secretRecheckPeriod,
		now:      time.Now,
	}
	s.queue.OnWait(m.queueWait)
	byTenant := cache.Indexers{indexTenant: func(obj any) ([]string, error) {
		m, err := metaOf(obj)
		if err != nil {
			return nil, err
		}
		return []string{m.GetLabels()[ownership.LabelClusterKey]}, nil
	}}
	podIndexers := cache.Indexers{indexTenant: byTenant[indexTenant], indexTenantNode: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok || podNode(p) == "" { // podpolicy.go
			return nil, nil
		}
		return []string{p.Labels[ownership.LabelClusterKey] + "/" + podNode(p)}, nil
	}, indexPodIP: podIPIndex}
	svcIndexers := cache.Indexers{indexTenant: byTenant[indexTenant], indexServiceIP: serviceIPIndex}
	core := f.Core().V1()
	infs := syncedKindInformers(f)
	s.superIndex = map[kind]cache.Indexer{}
	for k, inf := range infs {
		idx := byTenant
		switch k {
		case kindPod:
			idx = podIndexers
		case kindService:
			idx = svcIndexers
		}
		utilruntime.Must(inf.AddIndexers(idx))
		s.superIndex[k] = inf.GetIndexer()
		_, _ = inf.AddEventHandler(s.superHandler(k))
	}
	s.superNS, s.superPods, s.superCMs = core.Namespaces().Lister(), core.Pods().Lister(), core.ConfigMaps().Lister()
	s.superSecrets, s.superSvcs, s.superEps = core.Secrets().Lister(), core.Services().Lister(), core.Endpoints().Lister()
	s.superPVCs = core.PersistentVolumeClaims().Lister()
	s.tokenSecrets = newOwnWrites[*corev1.Secret](core.Secrets().Informer().GetStore(), tokenWriteTTL)
	s.superPDBs, s.superIngresses = f.Policy().V1().PodDisruptionBudgets().Lister(), f.Networking().V1().Ingresses().Lister()
	s.superNetPols = f.Networking().V1().NetworkPolicies().Lister()
	s.wireUpSources()
	nodes := s.nodeFactory.Core().V1().Nodes()
	_, _ = nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { s.enqueueNodeUsers(obj) },
		DeleteFunc: s.enqueueNodeUsers,
	})
	s.superNodes = nodes.Lister()
	s.eventCache = newSuperEventCache(super, s.enqueueSuperEvent) // event.go
	s.superEvents = corelisters.NewEventLister(s.eventCache.Indexer)
	return s
}

// Run starts the informers, the workers, the patrol and the VirtualCluster watch, and blocks
// until ctx ends. It returns an error only when it cannot start.
func (s *Syncer) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	defer utilruntime.HandleCrash()
	defer s.queue.ShutDown()
	defer s.vcQueue.ShutDown()

	if err := s.serveMetrics(ctx); err != nil {
		return err
	}
	if _, err := serveHealth(ctx, s.opts.HealthProbeBindAddress); err != nil {
		return err
	}
	if err := s.serveKubeletProxy(ctx); err != nil {
		return err
	}
	s.start.begin(s.now().Add(dnsStartLimit))
	if err := s.serveDNS(ctx); err != nil {
		return err
	}
	vcInformer := s.newVirtualClusterInformer()
	s.superFactory.Start(ctx.Done())
	s.nodeFactory.Start(ctx.Done())
	s.published.Start(ctx.Done())
	go s.eventCache.run(ctx)
	go vcInformer.Run(ctx.Done())
	logger.Info("Waiting for super cluster caches")
	for _, synced := range []map[any]bool{toAny(s.superFactory.WaitForCacheSync(ctx.Done())), toAny(s.nodeFactory.WaitForCacheSync(ctx.Done())),
		toAny(s.published.WaitForCacheSync(ctx.Done()))} {
		for typ, ok := range synced {
			if !ok {
				return fmt.Errorf("super cluster cache for %v did not sync", typ)
			}
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), s.eventCache.hasSynced) {
		return errors.New("super cluster cache for events did not sync")
	}
	if !cache.WaitForCacheSync(ctx.Done(), vcInformer.HasSynced) {
		return errors.New("VirtualCluster cache did not sync")
	}
	s.start.expect(s.servedVirtualClusters())

	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Go(func() { s.runWorker(ctx) })
	}
	wg.Go(func() { s.lease.run(ctx) })
	wg.Go(func() { wait.UntilWithContext(ctx, s.runVirtualClusterWorker, time.Second) })
	wg.Go(func() { wait.UntilWithContext(ctx, s.patrolAll, s.opts.Resync) })
	wg.Go(func() { wait.UntilWithContext(ctx, s.heartbeatAll, s.opts.HeartbeatPeriod) })
	wg.Go(func() { wait.UntilWithContext(ctx, s.updateQueueDepth, 5*time.Second) })
	logger.Info("Syncer running", "workers", s.opts.Workers, "workersPerTenant", s.opts.workersPerTenant(), "resync", s.opts.Resync)
	<-ctx.Done()
	s.queue.ShutDown()
	s.vcQueue.ShutDown()
	s.stopAllTenants(ctx)
	wg.Wait()
	logger.Info("Syncer stopped")
	return nil
}

func toAny[K comparable](m map[K]bool) map[any]bool {
	out := make(map[any]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// runWorker reconciles keys from the fair queue until it shuts down.
func (s *Syncer) runWorker(ctx context.Context) {
	for {
		k, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		s.process(ctx, k.Tenant, k.Item)
		s.queue.Done(k.Tenant, k.Item)
	}
}

func (s *Syncer) process(ctx context.Context, clusterKey string, key objKey) {
	t := s.tenant(clusterKey)
	if t == nil { // no longer served: drop the key's back-off with it
		s.queue.Forget(clusterKey, key)
		return
	}
	logger := klog.FromContext(ctx).WithValues("tenant", clusterKey, "kind", key.Kind, "object", klog.KRef(key.Namespace, key.Name))
	ctx, cancel := context.WithCancel(klog.NewContext(ctx, logger))
	stopCancel := context.AfterFunc(t.life, cancel) // the tenant stopped: its requests in flight end
	start := s.now()
	err := s.reconcile(ctx, t, key)
	stopCancel()
	cancel()
	if s.tenant(clusterKey) != t {
		// Stopped while the key synced: its queue and metrics are gone, and a retry or a
		// sample would bring them back for a tenant no longer served.
		s.queue.Forget(clusterKey, key)
		return
	}
	s.metrics.observe(clusterKey, key.Kind, s.now().Sub(start), err)
	if err != nil {
		logger.V(2).Info("Sync failed; retrying", "err", err)
		failures := s.queue.NumRequeues(clusterKey, key) + 1 // this one too
		s.queue.AddRateLimited(clusterKey, key)
		s.recordSyncError(t, key, failures, err) // syncerror.go
		return
	}
	s.queue.Forget(clusterKey, key)
}

// reconcile dispatches a key to its kind.
func (s *Syncer) reconcile(ctx context.Context, t *tenant, key objKey) error {
	switch key.Kind {
	case kindNamespace:
		_, err := s.syncNamespace(ctx, t, key.Name)
		return err
	case kindConfigMap:
		return s.syncConfigMap(ctx, t, key.Namespace, key.Name)
	case kindSecret:
		return s.syncSecret(ctx, t, key.Namespace, key.Name)
	case kindPod:
		return s.syncPod(ctx, t, key.Namespace, key.Name)
	case kindService:
		return s.syncService(ctx, t, key.Namespace, key.Name)
	case kindEndpoints:
		return s.syncEndpoints(ctx, t, key.Namespace, key.Name)
	case kindPVC:
		return s.syncPVC(ctx, t, key.Namespace, key.Name)
	case kindPDB:
		return s.syncPDB(ctx, t, key.Namespace, key.Name)
	case kindIngress:
		return s.syncIngress(ctx, t, key.Namespace, key.Name)
	case kindNode:
		return s.syncNode(ctx, t, key.Name)
	case kindEvent:
		return s.syncEvent(ctx, t, key.Namespace, key.Name)
	case kindNetworkPolicy:
		return s.syncNetworkPolicy(ctx, t, key.Namespace, key.Name)
	case kindPV:
		return s.syncPV(ctx, t, key.Name)
	case kindStorageClass:
		return s.syncStorageClass(ctx, t, key.Name)
	case kindPriorityClass:
		return s.syncPriorityClass(ctx, t, key.Name)
	case kindEndpointSlice:
		return s.syncEndpointSlice(ctx, t, key.Namespace, key.Name)
	case kindRuntimeClass:
		return s.syncRuntimeClass(ctx, t, key.Name)
	}
	return fmt.Errorf("unknown kind %q", key.Kind)
}

// tenant returns the serving tenant with clusterKey, or nil.
func (s *Syncer) tenant(clusterKey string) *tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tenants[clusterKey]
}

func (s *Syncer) servingTenants() []*tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		out = append(out, t)
	}
	return out
}

// enqueue queues key for the tenant with clusterKey if the syncer serves it, in the tenant's
// urgent lane if urgent.
func (s *Syncer) enqueue(clusterKey string, key objKey, urgent bool) {
	switch {
	case s.tenant(clusterKey) == nil:
	case urgent:
		s.queue.AddUrgent(clusterKey, key)
	default:
		s.queue.Add(clusterKey, key)
	}
}

// tokenSecretAddDelay is how long the sync that a pod token Secret's add event queues waits
// (superHandler); a variable for the tests.
var tokenSecretAddDelay = time.Second

// superHandler maps events of owned super objects to the keys of their tenant objects. The
// mapping reads the ownership labels only.
func (s *Syncer) superHandler(k kind) cache.ResourceEventHandler {
	handle := func(obj any, added bool) {
		m, err := metaOf(obj)
		if err != nil {
			return
		}
		clusterKey := m.GetLabels()[ownership.LabelClusterKey]
		key, ok := superKey(k, m, clusterKey) // patrol.go
		if !ok {
			return
		}
		if k == kindSecret && isTokenSecretObj(m) {
			s.tokenSecrets.caughtUp(m.GetNamespace(), m.GetName())
			if added {
				// The syncer writes a pod's token Secret right after the pod (podpolicy.go),
				// and the Secret's add event may still come before the pod's: a sync then
				// would find no super pod in the cache and create it again (AlreadyExists,
				// then a GET). The pod's own events bring its syncs; this one is for a Secret
				// left without its pod, and waits for the caches to agree.
				if s.tenant(clusterKey) != nil {
					s.queue.AddAfter(clusterKey, key, tokenSecretAddDelay)
				}
				return
			}
		}
		s.enqueue(clusterKey, key, false)
		if p, ok := obj.(*corev1.Pod); ok && podNode(p) != "" {
			s.enqueue(clusterKey, objKey{Kind: kindNode, Name: podNode(p)}, false)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { handle(obj, true) },
		UpdateFunc: func(old, obj any) {
			handle(obj, false)
			// A pod moving off a node (it cannot, but a delete+recreate looks alike, and so does
			// a pinned pod placed on another node by a tenant that changed its own) frees it.
			if op, ok := old.(*corev1.Pod); ok && podNode(op) != "" && podNode(op) != podNode(obj.(*corev1.Pod)) {
				handle(op, false)
			}
			if k == kindService {
				s.enqueueEndpointsOfUnselected(old, obj) // endpoints.go
			}
		},
		DeleteFunc: func(obj any) { handle(obj, false) },
	}
}

// enqueueNodeUsers queues a changed super node for every tenant with pods on it.
func (s *Syncer) enqueueNodeUsers(obj any) {
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	for _, t := range s.servingTenants() {
		if s.tenantUsesNode(t.key, m.GetName()) {
			s.queue.Add(t.key, objKey{Kind: kindNode, Name: m.GetName()})
		}
	}
}

func (s *Syncer) tenantUsesNode(clusterKey, node string) bool {
	pods, _ := s.superIndex[kindPod].ByIndex(indexTenantNode, clusterKey+"/"+node)
	return len(pods) > 0
}

// dropManagedFields is the transform of the syncer's informers: it never reads managed fields,
// and they are a large part of a cached pod (an entry per writer: the tenant's client, the
// syncer, the scheduler, the node). Updates without them keep the stored ones.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func metaOf(obj any) (metav1.Object, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	return m, nil
}

// updateQueueDepth publishes the queue depth per tenant and kind.
func (s *Syncer) updateQueueDepth(context.Context) {
	for _, t := range s.servingTenants() {
		counts := s.queue.CountBy(t.key, func(k objKey) string { return string(k.Kind) })
		for _, k := range append(allKinds, kindEvent) {
			s.metrics.queueDepth(t.key, k, counts[string(k)])
		}
	}
}

// syncedKindInformers are the informers of every kind synced down, the same
// on the super side and in each tenant.
func syncedKindInformers(f informers.SharedInformerFactory) map[kind]cache.SharedIndexInformer {
	core := f.Core().V1()
	return map[kind]cache.SharedIndexInformer{
		kindNamespace: core.Namespaces().Informer(),
		kindConfigMap: core.ConfigMaps().Informer(),
		kindSecret:    core.Secrets().Informer(),
		kindPod:       core.Pods().Informer(),
		kindService:   core.Services().Informer(),
		kindEndpoints: core.Endpoints().Informer(),
		kindPVC:       core.PersistentVolumeClaims().Informer(),
		kindPDB:       f.Policy().V1().PodDisruptionBudgets().Informer(),
		kindIngress:   f.Networking().V1().Ingresses().Informer(),

		kindNetworkPolicy: f.Networking().V1().NetworkPolicies().Informer(),
		kindEndpointSlice: f.Discovery().V1().EndpointSlices().Informer(),
		kindRuntimeClass:  f.Node().V1().RuntimeClasses().Informer(),
	}
}
