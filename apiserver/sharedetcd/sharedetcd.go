package sharedetcd

import (
	"context"
	"crypto/tls"
	"fmt"
	"reflect"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericfeatures "k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/registry/generic"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage"
	cacherstorage "k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/etcd3"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/tracing"
	"k8s.io/utils/clock"
)

// The client settings of upstream's factory (unexported there).
const (
	dialTimeout      = 20 * time.Second
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
)

// Clients holds the etcd clients shared by the storage of one apiserver: one per transport (etcd
// servers and TLS files), counted by the stores using it and closed with the last of them. The
// zero value is not usable; use New.
type Clients struct {
	logger *zap.Logger

	mu    sync.Mutex
	byKey map[string]*sharedClient
	dials int // clients ever created, for tests
}

type sharedClient struct {
	client     *kubernetes.Client
	compaction compactionFollower
	refs       int
}

// compactionFollower is upstream's etcd3 compactor with no interval of its own: it does not
// compact, it follows the compactions another apiserver of the same etcd records under
// compact_rev_key (package doc).
type compactionFollower interface {
	etcd3.Compactor
	Stop()
}

// followCompaction starts a compactionFollower on client.
func followCompaction(client *clientv3.Client) compactionFollower {
	return etcd3.NewCompactor(client, 0, clock.RealClock{}, nil)
}

// New returns an empty set of shared clients.
func New() *Clients {
	// One logger for all clients, as upstream does (a logger per client cost memory, #111476).
	logger, err := logutil.CreateDefaultZapLogger(zapcore.InfoLevel)
	if err != nil {
		logger = zap.NewNop()
	}
	return &Clients{logger: logger.Named("etcd-client"), byKey: map[string]*sharedClient{}}
}

// Wrap returns getter with its storage built on the shared clients, where upstream's storage
// factory would have dialed a client of its own (see the package doc for what stays upstream's).
// Nil stays nil.
func (c *Clients) Wrap(getter generic.RESTOptionsGetter) generic.RESTOptionsGetter {
	if getter == nil {
		return nil
	}
	return restOptionsGetter{inner: getter, clients: c}
}

// Close closes every client still open, for a server that stopped without destroying all of
// its storage.
func (c *Clients) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, sc := range c.byKey {
		sc.close()
		delete(c.byKey, key)
	}
}

// close stops the compaction follower and closes the client.
func (sc *sharedClient) close() {
	sc.compaction.Stop()
	_ = sc.client.Close()
}

// open reports how many clients are open and how many were ever dialed.
func (c *Clients) open() (open, dialed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey), c.dials
}

type restOptionsGetter struct {
	inner   generic.RESTOptionsGetter
	clients *Clients
}

// undecoratedCode is the code of generic.UndecoratedStorage, a plain function. StorageWithCacher
// returns a closure, whose code pointer differs wherever it is inlined, so it is recognised by
// the getter instead.
var undecoratedCode = reflect.ValueOf(generic.StorageDecorator(generic.UndecoratedStorage)).Pointer()

// GetRESTOptions returns inner's options with upstream's decorator replaced by the same one on a
// shared client. Options of any other getter, or with a decorator the getter does not make, are
// returned as they are.
func (g restOptionsGetter) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	opts, err := g.inner.GetRESTOptions(resource, example)
	if err != nil || opts.Decorator == nil || !shareable(opts.StorageConfig) {
		return opts, err
	}
	// StorageFactoryRestOptionsFactory, the getter of every kube-apiserver config, makes one of
	// two decorators: UndecoratedStorage, or StorageWithCacher when the watch cache is on.
	factory, ok := g.inner.(*genericoptions.StorageFactoryRestOptionsFactory)
	switch {
	case !ok:
	case reflect.ValueOf(opts.Decorator).Pointer() == undecoratedCode:
		opts.Decorator = g.clients.undecorated
	case factory.Options.EnableWatchCache:
		opts.Decorator = g.clients.withCacher
	}
	return opts, nil
}

// shareable reports whether storage of config may use a shared client: plain etcd3 storage
// without an egress dialer or compaction (which upstream ties to a client of its own).
func shareable(config *storagebackend.ConfigForResource) bool {
	return config != nil &&
		(config.Type == "" || config.Type == storagebackend.StorageTypeETCD3) &&
		config.Transport.EgressLookup == nil &&
		config.CompactionInterval == 0
}

// undecorated is generic.UndecoratedStorage on a shared client.
func (c *Clients) undecorated(config *storagebackend.ConfigForResource, resourcePrefix string,
	_ func(runtime.Object) (string, error), newFunc, newListFunc func() runtime.Object,
	_ storage.AttrFunc, _ storage.IndexerFuncs, _ *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
	return c.rawStorage(config, newFunc, newListFunc, resourcePrefix)
}

// withCacher is registry.StorageWithCacher on a shared client: the same watch cache over
// the raw store.
func (c *Clients) withCacher(config *storagebackend.ConfigForResource, resourcePrefix string,
	keyFunc func(runtime.Object) (string, error), newFunc, newListFunc func() runtime.Object,
	getAttrsFunc storage.AttrFunc, triggerFuncs storage.IndexerFuncs, indexers *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
	raw, destroyRaw, err := c.rawStorage(config, newFunc, newListFunc, resourcePrefix)
	if err != nil {
		return nil, nil, err
	}
	cacher, err := cacherstorage.NewCacherFromConfig(cacherstorage.Config{
		Storage:             raw,
		Versioner:           storage.APIObjectVersioner{},
		GroupResource:       config.GroupResource,
		EventsHistoryWindow: config.EventsHistoryWindow,
		ResourcePrefix:      resourcePrefix,
		KeyFunc:             keyFunc,
		NewFunc:             newFunc,
		NewListFunc:         newListFunc,
		GetAttrsFunc:        getAttrsFunc,
		IndexerFuncs:        triggerFuncs,
		Indexers:            indexers,
		Codec:               config.Codec,
	})
	if err != nil {
		destroyRaw()
		return nil, nil, err
	}
	delegator := cacherstorage.NewCacheDelegator(cacher, raw)
	var once sync.Once
	return delegator, func() {
		once.Do(func() {
			delegator.Stop()
			cacher.Stop()
			destroyRaw()
		})
	}, nil
}

// rawStorage is upstream's etcd3 store (factory.Create) on the shared client of config's
// transport, with a Watcher of its own, so its watches keep a gRPC stream of their own.
func (c *Clients) rawStorage(config *storagebackend.ConfigForResource, newFunc, newListFunc func() runtime.Object, resourcePrefix string) (storage.Interface, factory.DestroyFunc, error) {
	shared, compaction, release, err := c.acquire(config.Transport)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	own := clientv3.NewCtxClient(ctx)
	own.KV, own.Lease, own.Maintenance = shared.KV, shared.Lease, shared.Maintenance
	own.Watcher = clientv3.NewWatcher(shared.Client)
	client := &kubernetes.Client{Client: own}
	client.Kubernetes = client

	transformer := config.Transformer
	if transformer == nil {
		transformer = identity.NewEncryptCheckTransformer()
	}
	versioner := storage.APIObjectVersioner{}
	decoder := etcd3.NewDefaultDecoder(config.Codec, versioner)
	unsafeDelete := utilfeature.DefaultFeatureGate.Enabled(genericfeatures.AllowUnsafeMalformedObjectDeletion)
	if unsafeDelete {
		transformer = etcd3.WithCorruptObjErrorHandlingTransformer(transformer)
		decoder = etcd3.WithCorruptObjErrorHandlingDecoder(decoder)
	}
	// Upstream gives storage without compaction (all that shareable admits) no compactor, so its
	// watch cache never learns of compactions; this one follows them (package doc).
	store, err := etcd3.New(client, compaction, config.Codec, newFunc, newListFunc, config.Prefix, resourcePrefix,
		config.GroupResource, transformer, config.LeaseManagerConfig, decoder, versioner)
	if err != nil {
		_ = own.Watcher.Close()
		cancel()
		release()
		return nil, nil, err
	}
	var once sync.Once
	destroy := func() {
		once.Do(func() {
			store.Close()
			_ = own.Watcher.Close()
			cancel()
			release()
		})
	}
	var s storage.Interface = store
	if unsafeDelete {
		s = etcd3.NewStoreWithUnsafeCorruptObjectDeletion(s, config.GroupResource)
	}
	return s, destroy, nil
}

// acquire returns the shared client of transport t, dialing it on first use, its compaction
// follower, and the function that gives them back.
func (c *Clients) acquire(t storagebackend.TransportConfig) (*kubernetes.Client, compactionFollower, func(), error) {
	key := fmt.Sprintf("%q %q %q %q", t.ServerList, t.CertFile, t.KeyFile, t.TrustedCAFile)
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, ok := c.byKey[key]
	if !ok {
		client, err := c.dial(t)
		if err != nil {
			return nil, nil, nil, err
		}
		c.dials++
		sc = &sharedClient{client: client, compaction: followCompaction(client.Client)}
		c.byKey[key] = sc
	}
	sc.refs++
	var once sync.Once
	return sc.client, sc.compaction, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			sc.refs--
			if sc.refs == 0 && c.byKey[key] == sc {
				sc.close()
				delete(c.byKey, key)
			}
		})
	}, nil
}

// dial creates a client as upstream's factory does (newETCD3Client), minus the egress dialer
// (shareable excludes it) and the gRPC Prometheus interceptors (package doc).
func (c *Clients) dial(t storagebackend.TransportConfig) (*kubernetes.Client, error) {
	var tlsConfig *tls.Config
	if t.CertFile != "" || t.KeyFile != "" || t.TrustedCAFile != "" {
		var err error
		tlsInfo := transport.TLSInfo{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustedCAFile: t.TrustedCAFile}
		if tlsConfig, err = tlsInfo.ClientConfig(); err != nil {
			return nil, err
		}
	}
	dialOptions := []grpc.DialOption{grpc.WithBlock()} // block until the connection is up
	if utilfeature.DefaultFeatureGate.Enabled(genericfeatures.APIServerTracing) {
		dialOptions = append(dialOptions, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithMessageEvents(otelgrpc.ReceivedEvents, otelgrpc.SentEvents),
			otelgrpc.WithPropagators(tracing.Propagators()),
			otelgrpc.WithTracerProvider(t.TracerProvider),
		)))
	}
	client, err := kubernetes.New(clientv3.Config{
		DialTimeout:          dialTimeout,
		DialKeepAliveTime:    keepaliveTime,
		DialKeepAliveTimeout: keepaliveTimeout,
		DialOptions:          dialOptions,
		Endpoints:            t.ServerList,
		TLS:                  tlsConfig,
		Logger:               c.logger,
	})
	if err != nil {
		return nil, err
	}
	client.KV = etcd3.NewETCDLatencyTracker(client.KV) // etcd request metrics, as upstream
	if utilfeature.DefaultFeatureGate.Enabled(genericfeatures.ConsistentListFromCache) ||
		utilfeature.DefaultFeatureGate.Enabled(genericfeatures.WatchList) {
		// etcd3.New checks the client it is given, whose per-store copy has no endpoints.
		etcdfeature.DefaultFeatureSupportChecker.CheckClient(client.Ctx(), client, storage.RequestWatchProgress)
	}
	return client, nil
}
