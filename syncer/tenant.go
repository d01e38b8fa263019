package syncer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/internal/textcut"
	"github.com/vnest-dev/vnest/syncer/kubeletproxy"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

var virtualClusterGVR = schema.GroupVersionResource{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Resource: "virtualclusters"}

// tenant is one served VirtualCluster: its client, informers and settings.
type tenant struct {
	key   string // status.clusterKey
	owner mapping.Owner
	vc    types.NamespacedName

	client   kubernetes.Interface
	settings atomic.Pointer[settings]
	quota    quotaLedger // admissions against spec.policy.quota
	// superSvcs is the syncer's cache of super Services, for the service environment of pods.
	superSvcs corelisters.ServiceLister
	// superNodes is the syncer's cache of super nodes, for pods the tenant puts on a node itself.
	superNodes corelisters.NodeLister
	// superPCs is the syncer's cache of published super PriorityClasses, the only classes a
	// super pod may name.
	superPCs schedulinglisters.PriorityClassLister
	// nameserver is the tenant DNS server's address pods get (dns.go); "" when it is off.
	nameserver string
	// serviceAccounts is set when signer is: the service accounts tokens are signed for.
	serviceAccounts corelisters.ServiceAccountLister
	// signer signs the tenant's service-account tokens (podtokensign.go); nil when the syncer
	// has not the tenant's key, and asks the tenant's TokenRequest API instead.
	signer *tokenSigner

	namespaces  corelisters.NamespaceLister
	pods        corelisters.PodLister
	configMaps  corelisters.ConfigMapLister
	secrets     corelisters.SecretLister
	services    corelisters.ServiceLister
	endpoints   corelisters.EndpointsLister
	pvcs        corelisters.PersistentVolumeClaimLister
	pdbs        policylisters.PodDisruptionBudgetLister
	ingresses   networkinglisters.IngressLister
	nodes       corelisters.NodeLister
	netpols     networkinglisters.NetworkPolicyLister
	pvs         corelisters.PersistentVolumeLister
	scs         storagelisters.StorageClassLister
	pcs         schedulinglisters.PriorityClassLister
	podIndex    cache.Indexer          // with the reference indexes of pods.go
	podWrites   *podWrites             // pods as the syncer last wrote them (podwrites.go)
	index       map[kind]cache.Indexer // every kind's store, for the patrol
	recorder    record.EventRecorder   // events on tenant objects
	stop        context.CancelFunc     // stops informers and the event broadcaster
	synced      func() bool            // the tenant's informers have synced
	fingerprint string                 // fingerprintOf the kubeconfig the client was built from and the tenantPKI
	ca          *kubeletproxy.CA       // the CA of the kubeconfig; identifies the tenant to the kubelet proxy
	life        context.Context        // ends with stop: process cancels a sync in flight with it
	// kubeletClient is the DER of the tenant apiserver's kubelet client certificate, the only
	// one of the tenant CA the kubelet proxy takes; nil when the syncer could not read it.
	kubeletClient []byte
	// pinRechecked is when (Unix ns) a refused certificate last made the syncer re-read the
	// pin (kubeletproxy.go).
	pinRechecked atomic.Int64
}

// settings are the parts of the VirtualCluster spec the sync depends on; they can change while
// the tenant is served.
type settings struct {
	policy  v1alpha1.PolicySpec
	syncAll bool // spec.sync.secretsAndConfigMaps == All
	kinds   []v1alpha1.SyncKind
	domain  string // spec.clusterDomain
}

// optedIn reports whether the tenant opted in to syncing kind k.
func (st *settings) optedIn(k v1alpha1.SyncKind) bool {
	return slices.Contains(st.kinds, k)
}

// optInKinds are the kinds synced only when the VirtualCluster names them in spec.sync.kinds.
var optInKinds = map[v1alpha1.SyncKind]kind{
	v1alpha1.SyncKindIngress:             kindIngress,
	v1alpha1.SyncKindNetworkPolicy:       kindNetworkPolicy,
	v1alpha1.SyncKindPodDisruptionBudget: kindPDB,
}

// changedKinds are the kinds whose objects sync differently under the settings now than under
// was, in the order of allKinds: an opt-in kind added or removed; Secrets and ConfigMaps when
// their scope changed; namespaces, virtual nodes and pods (admission, placement, quota) when the
// policy changed. The cluster domain cannot change (the CRD makes it immutable).
func changedKinds(was, now *settings) []kind {
	changed := map[kind]bool{}
	for sk, k := range optInKinds {
		if was.optedIn(sk) != now.optedIn(sk) {
			changed[k] = true
		}
	}
	if was.syncAll != now.syncAll {
		changed[kindConfigMap], changed[kindSecret] = true, true
	}
	if !apiequality.Semantic.DeepEqual(was.policy, now.policy) {
		changed[kindNamespace], changed[kindPod], changed[kindNode] = true, true, true
	}
	var kinds []kind
	for _, k := range allKinds {
		if changed[k] {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

func settingsOf(vc *v1alpha1.VirtualCluster) *settings {
	st := &settings{domain: vc.Spec.ClusterDomain}
	if st.domain == "" {
		st.domain = defaultClusterDomain
	}
	if vc.Spec.Policy != nil {
		st.policy = *vc.Spec.Policy
	}
	if vc.Spec.Sync != nil {
		st.syncAll = vc.Spec.Sync.SecretsAndConfigMaps == v1alpha1.SyncScopeAll
		st.kinds = slices.Clone(vc.Spec.Sync.Kinds)
	}
	return st
}

// secretRecheckPeriod is how often the syncer reads a served tenant's kubeconfig and PKI
// Secrets again although its VirtualCluster did not change: the manager renews the kubelet
// client certificate the kubelet proxy pins, and may replace the service-account key, without
// touching the VirtualCluster. A changed Secret changes the tenant's fingerprint, and the tenant
// is served again with it; an unchanged one costs two GETs.
const secretRecheckPeriod = 10 * time.Minute

func (s *Syncer) newVirtualClusterInformer() cache.SharedIndexInformer {
	inf := dynamicinformer.NewFilteredDynamicInformer(s.dyn, virtualClusterGVR, metav1.NamespaceAll, s.vcResync, cache.Indexers{}, nil).Informer()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			s.vcQueue.Add(key)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	s.vcLister = inf.GetIndexer()
	return inf
}

func (s *Syncer) runVirtualClusterWorker(ctx context.Context) {
	for {
		key, shutdown := s.vcQueue.Get()
		if shutdown {
			return
		}
		if err := s.syncVirtualCluster(ctx, key); err != nil {
			klog.FromContext(ctx).Info("Cannot serve VirtualCluster yet; retrying", "virtualCluster", key, "err", err)
			s.reportNotServing(ctx, key, err)
			s.vcQueue.AddRateLimited(key)
		} else {
			s.vcQueue.Forget(key)
		}
		s.vcQueue.Done(key)
	}
}

// syncVirtualCluster starts serving a Running VirtualCluster, restarts it when its kubeconfig
// changed, updates its settings, and stops serving it when it is gone or not Running.
func (s *Syncer) syncVirtualCluster(ctx context.Context, key string) error {
	vc, err := s.getVirtualCluster(key)
	if err != nil {
		return err
	}
	if !served(vc) {
		s.stopTenant(ctx, key)
		s.start.started(key) // nothing to start
		if vc == nil {
			return nil
		}
		return s.setSyncing(ctx, vc, false, nil)
	}
	secretName := vc.Status.KubeconfigSecretName
	if secretName == "" {
		secretName = vc.KubeconfigSecretName()
	}
	secret, err := s.super.CoreV1().Secrets(vc.Namespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the kubeconfig Secret %s/%s: %w", vc.Namespace, secretName, err)
	}
	kubeconfig := secret.Data["kubeconfig"]
	if len(kubeconfig) == 0 {
		return fmt.Errorf("the Secret %s/%s has no key kubeconfig", vc.Namespace, secretName)
	}
	p, err := s.readTenantPKI(ctx, vc)
	if err != nil {
		return err
	}
	fingerprint := fingerprintOf(kubeconfig, p)

	s.mu.RLock()
	running := s.vcs[key]
	s.mu.RUnlock()
	if running != nil && running.fingerprint == fingerprint && running.key == vc.Status.ClusterKey {
		now := settingsOf(vc)
		was := running.settings.Swap(now)
		if !running.synced() {
			return fmt.Errorf("the tenant's caches have not synced yet")
		}
		s.markServing(ctx, running)
		// Objects that sync differently now go at once, not at the next patrol: a tenant that
		// opts in to NetworkPolicies or raises its quota sees the effect in seconds.
		if kinds := changedKinds(was, now); len(kinds) > 0 {
			klog.FromContext(ctx).Info("VirtualCluster settings changed; re-queueing", "tenant", running.key, "kinds", kinds)
			for _, k := range kinds {
				s.patrolKind(ctx, running, k)
			}
		}
		return s.setSyncing(ctx, vc, true, nil)
	}
	s.stopTenant(ctx, key)
	t, err := s.startTenant(ctx, vc, kubeconfig, p, fingerprint)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.vcs[key] = t
	s.mu.Unlock()
	s.start.started(key) // its pods are known now: SERVFAIL until its caches synced (startedTenant)
	// Wait for the caches outside the lock; the VC worker is the only writer of vcs.
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(waitCtx.Done(), t.synced) {
		return fmt.Errorf("the tenant's caches did not sync within a minute")
	}
	s.markServing(ctx, t)
	return s.setSyncing(ctx, vc, true, nil)
}

// markServing makes t visible to the workers and queues all its objects, and the super events
// about them, once.
func (s *Syncer) markServing(ctx context.Context, t *tenant) {
	// The queue and the metrics take the tenant's keys and series from now until stopTenant:
	// before the workers and handlers see it.
	s.queue.AddTenant(t.key)
	s.metrics.serve(t.key)
	s.mu.Lock()
	_, already := s.tenants[t.key]
	s.tenants[t.key] = t
	s.mu.Unlock()
	if already {
		return
	}
	klog.FromContext(ctx).Info("Serving tenant", "tenant", t.key, "virtualCluster", t.vc)
	s.patrol(ctx, t)
	s.queueSuperEvents(ctx, t) // event.go
}

// served reports whether the syncer serves VirtualCluster vc (nil: gone): Running, with a
// cluster key, not being deleted.
func served(vc *v1alpha1.VirtualCluster) bool {
	return vc != nil && vc.DeletionTimestamp == nil && vc.Status.Phase == v1alpha1.PhaseRunning && vc.Status.ClusterKey != ""
}

// servedVirtualClusters are the keys of the VirtualClusters in the cache that the syncer serves.
func (s *Syncer) servedVirtualClusters() []string {
	var out []string
	for _, key := range s.vcLister.ListKeys() {
		if vc, err := s.getVirtualCluster(key); err == nil && served(vc) {
			out = append(out, key)
		}
	}
	return out
}

func (s *Syncer) getVirtualCluster(key string) (*v1alpha1.VirtualCluster, error) {
	obj, exists, err := s.vcLister.GetByKey(key)
	if err != nil || !exists {
		return nil, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	vc := &v1alpha1.VirtualCluster{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, vc); err != nil {
		return nil, fmt.Errorf("decoding VirtualCluster %s: %w", key, err)
	}
	return vc, nil
}

// fingerprintOf identifies what a tenant is served with: its kubeconfig and what the syncer
// read from its PKI Secret. A renewed kubelet client certificate changes it, so the tenant is
// served again, with the new pin.
func fingerprintOf(kubeconfig []byte, p tenantPKI) string {
	sum := sha256.New()
	for _, part := range [][]byte{kubeconfig, p.saKey, p.kubeletClient} {
		sum.Write(part)
		sum.Write([]byte{0}) // a kubeconfig or PEM holds no NUL byte: no two triples hash the same bytes
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// tenantPKI is what the syncer takes from a tenant's PKI Secret; each part nil when the syncer
// cannot read it there.
type tenantPKI struct {
	// saKey is the service-account signing key (PEM): the syncer signs the tenant's tokens.
	saKey []byte
	// kubeletClient is the tenant apiserver's kubelet client certificate (PEM), which the
	// kubelet proxy pins.
	kubeletClient []byte
}

// readTenantPKI reads the tenant's PKI Secret; a Secret missing or refused gives an empty
// tenantPKI (the syncer then asks the tenant's TokenRequest API for tokens, and the kubelet
// proxy takes the tenant CA's certificates of the kubelet client's name); an error only for a
// failure worth retrying.
func (s *Syncer) readTenantPKI(ctx context.Context, vc *v1alpha1.VirtualCluster) (tenantPKI, error) {
	name := vc.PKISecretName()
	secret, err := s.super.CoreV1().Secrets(vc.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		return tenantPKI{}, nil
	case err != nil:
		return tenantPKI{}, fmt.Errorf("reading the PKI Secret %s/%s: %w", vc.Namespace, name, err)
	}
	return tenantPKI{
		saKey:         secret.Data[layout.ServiceAccountKeyName+".key"],
		kubeletClient: secret.Data[layout.KubeletClientCertName+".crt"],
	}, nil
}

// startTenant builds the tenant's client and starts its informers; it does not wait for them.
// p is what the syncer could read of the tenant's PKI Secret.
func (s *Syncer) startTenant(ctx context.Context, vc *v1alpha1.VirtualCluster, kubeconfig []byte, p tenantPKI, fingerprint string) (*tenant, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("parsing the tenant kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = s.opts.QPS, s.opts.Burst
	cfg.UserAgent = "vnest-syncer"
	cfg.WarningHandler = rest.NoWarnings{} // v1 Endpoints is deprecated; the syncer still serves it
	client, err := kubernetes.NewForConfig(protobuf(cfg))
	if err != nil {
		return nil, fmt.Errorf("tenant client: %w", err)
	}
	t := newTenant(vc, client)
	t.fingerprint = fingerprint
	if len(p.saKey) == 0 {
		klog.FromContext(ctx).Info("No service-account key of the tenant in its PKI Secret (none, or not readable); its tokens come from its TokenRequest API",
			"virtualCluster", klog.KObj(vc), "secret", vc.PKISecretName())
	} else if t.signer, err = newTokenSigner(layout.ServiceAccountIssuer(t.settings.Load().domain), p.saKey); err != nil {
		klog.FromContext(ctx).Error(err, "Tenant tokens come from its TokenRequest API", "virtualCluster", klog.KObj(vc))
	}
	t.ca = tenantCA(cfg)
	t.kubeletClient = s.kubeletClientPin(ctx, vc, p.kubeletClient)
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(dropManagedFields))
	t.wireInformers(factory, s)
	broadcaster := record.NewBroadcaster(record.WithContext(tctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "vnest-syncer"})
	t.life = tctx
	t.stop = func() {
		cancel()
		broadcaster.Shutdown()
		factory.Shutdown()
	}
	factory.Start(tctx.Done())
	return t, nil
}

func newTenant(vc *v1alpha1.VirtualCluster, client kubernetes.Interface) *tenant {
	t := &tenant{
		key:    vc.Status.ClusterKey,
		owner:  mapping.Owner{ClusterKey: vc.Status.ClusterKey, VirtualCluster: vc.Namespace + "/" + vc.Name},
		vc:     types.NamespacedName{Namespace: vc.Namespace, Name: vc.Name},
		client: client,
		index:  map[kind]cache.Indexer{},
		life:   context.Background(),
	}
	t.settings.Store(settingsOf(vc))
	return t
}

// superNode is the super node named name, or nil when name is "" or there is none.
func (t *tenant) superNode(name string) *corev1.Node {
	if name == "" || t.superNodes == nil {
		return nil
	}
	n, err := t.superNodes.Get(name)
	if err != nil {
		return nil
	}
	return n
}

// wireInformers creates the tenant's informers on factory, with handlers that queue keys.
func (t *tenant) wireInformers(f informers.SharedInformerFactory, s *Syncer) {
	core := f.Core().V1()
	t.superSvcs, t.superNodes, t.superPCs = s.superSvcs, s.superNodes, s.superPCs
	t.nameserver = s.dnsNameserver()
	infs := syncedKindInformers(f)
	infs[kindNode] = core.Nodes().Informer() // virtual nodes live in tenants only
	maps.Copy(infs, upKindInformers(f))      // as do the other kinds synced up only
	_ = infs[kindPod].AddIndexers(podReferenceIndexers)
	_ = infs[kindEndpoints].AddIndexers(cache.Indexers{indexEndpointIP: endpointIPIndex})
	var synced []cache.InformerSynced
	for k, inf := range infs {
		t.index[k] = inf.GetIndexer()
		synced = append(synced, inf.HasSynced)
		_, _ = inf.AddEventHandler(t.handler(s, k))
	}
	if t.signer != nil {
		sa := core.ServiceAccounts()
		t.serviceAccounts = sa.Lister()
		synced = append(synced, sa.Informer().HasSynced)
	}
	t.namespaces, t.pods, t.configMaps = core.Namespaces().Lister(), core.Pods().Lister(), core.ConfigMaps().Lister()
	t.secrets, t.services, t.endpoints, t.nodes = core.Secrets().Lister(), core.Services().Lister(), core.Endpoints().Lister(), core.Nodes().Lister()
	t.pvcs = core.PersistentVolumeClaims().Lister()
	t.pdbs, t.ingresses = f.Policy().V1().PodDisruptionBudgets().Lister(), f.Networking().V1().Ingresses().Lister()
	t.netpols, t.pvs = f.Networking().V1().NetworkPolicies().Lister(), core.PersistentVolumes().Lister()
	t.scs, t.pcs = f.Storage().V1().StorageClasses().Lister(), f.Scheduling().V1().PriorityClasses().Lister()
	t.podIndex = infs[kindPod].GetIndexer()
	t.podWrites = newPodWrites(infs[kindPod].GetStore())
	t.synced = func() bool {
		for _, ok := range synced {
			if !ok() {
				return false
			}
		}
		return true
	}
}

// handler queues the key of a changed tenant object and of the objects that depend on it. The
// keys of a new object and of a deletion (the object is gone, or its deletion has just begun) go
// in the tenant's urgent lane: the super side of those is what the tenant waits for, while the
// status, events and nodes of the objects synced before may wait behind them.
func (t *tenant) handler(s *Syncer, k kind) cache.ResourceEventHandler {
	handle := func(obj any, urgent bool) {
		m, err := metaOf(obj)
		if err != nil {
			return
		}
		add := func(key objKey) { s.enqueue(t.key, key, urgent) }
		add(objKey{Kind: k, Namespace: m.GetNamespace(), Name: m.GetName()})
		switch o := obj.(type) {
		case *corev1.Pod:
			t.podWrites.statuses.caughtUp(o.Namespace, o.Name) // podwrites.go
			// A pod's Secrets and ConfigMaps are synced while it uses them.
			cms, secrets := podReferences(o)
			for _, name := range cms {
				add(objKey{Kind: kindConfigMap, Namespace: o.Namespace, Name: name})
			}
			for _, name := range secrets {
				add(objKey{Kind: kindSecret, Namespace: o.Namespace, Name: name})
			}
		case *corev1.Service:
			add(objKey{Kind: kindEndpoints, Namespace: o.Namespace, Name: o.Name})
		case *corev1.Namespace:
			// NetworkPolicies may select namespaces by labels that stay in the tenant.
			for _, key := range t.networkPolicyKeys() {
				add(key)
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { handle(obj, true) },
		UpdateFunc: func(old, obj any) { handle(obj, deletionBegun(old, obj)) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			handle(obj, true)
		},
	}
}

// deletionBegun reports whether an update is the start of the object's graceful deletion: obj has
// a deletionTimestamp, old had none.
func deletionBegun(old, obj any) bool {
	before, err1 := metaOf(old)
	after, err2 := metaOf(obj)
	return err1 == nil && err2 == nil && before.GetDeletionTimestamp() == nil && after.GetDeletionTimestamp() != nil
}

// stopTenant stops serving the VirtualCluster with key "<namespace>/<name>" if it is served.
// Its super objects stay: deleting them is the manager's job when the VirtualCluster goes.
func (s *Syncer) stopTenant(ctx context.Context, vcKey string) {
	s.mu.Lock()
	t := s.vcs[vcKey]
	delete(s.vcs, vcKey)
	if t != nil && s.tenants[t.key] == t {
		delete(s.tenants, t.key)
	}
	s.mu.Unlock()
	if t == nil {
		return
	}
	s.queue.RemoveTenant(t.key)
	s.metrics.forgetTenant(t.key)
	t.stop()
	klog.FromContext(ctx).Info("Stopped serving tenant", "tenant", t.key, "virtualCluster", vcKey)
}

func (s *Syncer) stopAllTenants(ctx context.Context) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.vcs))
	for k := range s.vcs {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	for _, k := range keys {
		s.stopTenant(ctx, k)
	}
}

// ignoreNotFound returns nil for a NotFound error.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// ignoreAlreadyExists returns nil for an AlreadyExists error.
func ignoreAlreadyExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// syncingCondition is the Syncing condition the syncer records on vc: True while it serves vc
// (serving); False, with reason SyncerNotServing, once it stops serving a vc whose condition was
// True (the phase left Running, or vc is being deleted), or when it cannot start serving a vc it
// should serve (err, its last attempt's failure: a kubeconfig Secret missing, a tenant apiserver
// that does not answer). Nil when vc's condition already says so, and for a vc the syncer has
// not served whose condition is the manager's initial Unknown: it is not the syncer's to serve.
func syncingCondition(vc *v1alpha1.VirtualCluster, serving bool, err error) *metav1.Condition {
	cond := metav1.Condition{Type: v1alpha1.ConditionSyncing, ObservedGeneration: vc.Generation}
	old := meta.FindStatusCondition(vc.Status.Conditions, cond.Type)
	switch {
	case serving:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, v1alpha1.ReasonReady, "the syncer serves this virtual cluster"
	case !served(vc):
		if old == nil || old.Status == metav1.ConditionUnknown {
			return nil
		}
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonSyncerNotServing
		cond.Message = fmt.Sprintf("the syncer serves a virtual cluster while its phase is Running; it is %s", cmp.Or(string(vc.Status.Phase), "not set"))
		if vc.DeletionTimestamp != nil {
			cond.Message = "the syncer stopped serving this virtual cluster: it is being deleted"
		}
	case err != nil:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonSyncerNotServing
		cond.Message = "the syncer cannot serve this virtual cluster yet, retrying: " + textcut.Truncate(err.Error(), maxErrorMessage)
	default:
		return nil
	}
	if old != nil && old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message {
		return nil
	}
	return &cond
}

// setSyncing records on vc the Syncing condition syncingCondition gives (serving, err), if any,
// but not True while the syncer's heartbeat Lease has not been renewed within its duration
// (heartbeatLapsed): the manager takes the syncer for stopped then, and would set the condition
// Unknown again. The heartbeat looks at the held-back VirtualClusters again once it renews the
// Lease (resyncHeldBack).
func (s *Syncer) setSyncing(ctx context.Context, vc *v1alpha1.VirtualCluster, serving bool, err error) error {
	cond := syncingCondition(vc, serving, err)
	if s.dyn == nil || cond == nil {
		return nil
	}
	if cond.Status == metav1.ConditionTrue && s.heartbeatLapsed() {
		klog.FromContext(ctx).Info("Not setting Syncing True: the syncer's lease was not renewed within its duration, so the manager takes the syncer for stopped; setting it once the lease is renewed",
			"tenant", vc.Status.ClusterKey, "virtualCluster", klog.KObj(vc), "lease", klog.KRef(s.lease.namespace, s.lease.name),
			"lastRenewed", logRenewed(s.lease.lastRenewed()), "leaseDuration", s.lease.duration)
		return nil
	}
	updated := vc.DeepCopy()
	meta.SetStatusCondition(&updated.Status.Conditions, *cond)
	obj, convErr := runtime.DefaultUnstructuredConverter.ToUnstructured(updated)
	if convErr != nil {
		return convErr
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind("VirtualCluster")
	_, updErr := s.dyn.Resource(virtualClusterGVR).Namespace(vc.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if updErr != nil && !apierrors.IsNotFound(updErr) {
		return fmt.Errorf("setting the Syncing condition: %w", updErr)
	}
	return nil
}

// heartbeatLapsed reports whether the syncer has a heartbeat Lease that it has not renewed within
// its duration.
func (s *Syncer) heartbeatLapsed() bool {
	return s.lease != nil && !s.lease.renewedWithin(s.now())
}

// resyncHeldBack queues again the VirtualClusters the syncer serves whose Syncing is not True:
// the heartbeat calls it once it renews its Lease after a lapse (or for the first time), and
// setSyncing may have held their condition back.
func (s *Syncer) resyncHeldBack(context.Context) {
	for _, key := range s.vcLister.ListKeys() {
		if vc, err := s.getVirtualCluster(key); err == nil && served(vc) && !meta.IsStatusConditionTrue(vc.Status.Conditions, v1alpha1.ConditionSyncing) {
			s.vcQueue.Add(key)
		}
	}
}

// reportNotServing records on VirtualCluster key, when the syncer should serve it but does not,
// why (err, the failure of its last attempt): Syncing False. A tenant still served with what
// the syncer read before (the failure was in reading its Secrets again) is left as it is.
func (s *Syncer) reportNotServing(ctx context.Context, key string, err error) {
	vc, getErr := s.getVirtualCluster(key)
	if getErr != nil || !served(vc) {
		return
	}
	s.mu.RLock()
	t := s.vcs[key]
	serving := t != nil && s.tenants[t.key] == t
	s.mu.RUnlock()
	if serving {
		return
	}
	if setErr := s.setSyncing(ctx, vc, false, err); setErr != nil {
		klog.FromContext(ctx).V(2).Info("Cannot record why the VirtualCluster is not served", "virtualCluster", key, "err", setErr)
	}
}
