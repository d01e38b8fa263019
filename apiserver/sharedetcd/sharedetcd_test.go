package sharedetcd

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/server/egressselector"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"

	"github.com/vnest-dev/vnest/internal/testetcd"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
}

// getter is the RESTOptionsGetter a tenant's kube-apiserver config has (compaction off), on the
// etcd at url; resources in uncached get no watch cache.
func getter(url string, uncached ...string) generic.RESTOptionsGetter {
	config := storagebackend.NewDefaultConfig("/registry", codecs.LegacyCodec(examplev1.SchemeGroupVersion))
	config.Transport.ServerList = []string{url}
	config.CompactionInterval = 0
	opts := genericoptions.NewEtcdOptions(config)
	for _, r := range uncached {
		opts.WatchCacheSizes = append(opts.WatchCacheSizes, r+"#0")
	}
	return opts.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: *config}, nil)
}

// podStorage builds the storage of resource from the options of g, as a registry does.
func podStorage(t *testing.T, g generic.RESTOptionsGetter, resource string) (storage.Interface, factory.DestroyFunc) {
	t.Helper()
	opts, err := g.GetRESTOptions(schema.GroupResource{Resource: resource}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prefix := opts.ResourcePrefix // "/pods": SimpleStorageFactory joins the empty group and the resource
	s, destroy, err := opts.Decorator(opts.StorageConfig, prefix,
		func(obj runtime.Object) (string, error) { return storage.NamespaceKeyFunc(prefix+"/", obj) },
		func() runtime.Object { return &example.Pod{} },
		func() runtime.Object { return &example.PodList{} },
		storage.DefaultNamespaceScopedAttr, nil, &cache.Indexers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(destroy)
	return s, destroy
}

func TestResourcesShareOneClient(t *testing.T) {
	url := testetcd.Start(t)
	clients := New()
	t.Cleanup(clients.Close)
	g := clients.Wrap(getter(url, "uncachedpods"))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	cached, destroyCached := podStorage(t, g, "pods")
	raw, destroyRaw := podStorage(t, g, "uncachedpods")
	if open, dialed := clients.open(); open != 1 || dialed != 1 {
		t.Fatalf("%d clients open, %d dialed, want 1 and 1", open, dialed)
	}
	if reflect.TypeOf(cached) == reflect.TypeOf(raw) {
		t.Errorf("both stores are %T: the watch cache went missing or the size-0 resource got one", raw)
	}

	// Each store works: a watch sees a create, a get reads it back.
	for _, st := range []struct {
		s      storage.Interface
		prefix string
	}{{cached, "/pods/ns/"}, {raw, "/uncachedpods/ns/"}} {
		var w watch.Interface
		// A watch cache refuses watches until it has listed.
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			var err error
			w, err = st.s.Watch(ctx, st.prefix, storage.ListOptions{ResourceVersion: "0", Predicate: storage.Everything, Recursive: true})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("%s watch: %v", st.prefix, err)
		}
		var created example.Pod
		if err := st.s.Create(ctx, st.prefix+"p", &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}, &created, 0); err != nil {
			t.Fatalf("%s create: %v", st.prefix, err)
		}
		select {
		case ev := <-w.ResultChan():
			// The watch cache sends its objects wrapped (for their encodings), so by their metadata.
			if m, err := meta.Accessor(ev.Object); ev.Type != watch.Added || err != nil || m.GetName() != "p" {
				t.Errorf("%s watch event %s %v, want ADDED p", st.prefix, ev.Type, ev.Object)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no watch event", st.prefix)
		}
		w.Stop()
		var got example.Pod
		if err := st.s.Get(ctx, st.prefix+"p", storage.GetOptions{}, &got); err != nil || got.ResourceVersion != created.ResourceVersion {
			t.Errorf("%s get: %v, resourceVersion %q, want %q", st.prefix, err, got.ResourceVersion, created.ResourceVersion)
		}
	}

	destroyCached()
	if open, _ := clients.open(); open != 1 {
		t.Errorf("%d clients open while one store uses it, want 1", open)
	}
	destroyRaw()
	if open, dialed := clients.open(); open != 0 || dialed != 1 {
		t.Errorf("after the last store: %d clients open, %d dialed, want 0 and 1", open, dialed)
	}
}

func TestOtherStorageStaysUpstreams(t *testing.T) {
	mine := func(*storagebackend.ConfigForResource, string, func(runtime.Object) (string, error), func() runtime.Object,
		func() runtime.Object, storage.AttrFunc, storage.IndexerFuncs, *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
		return nil, nil, nil
	}
	config := storagebackend.NewDefaultConfig("/registry", nil).ForResource(schema.GroupResource{Resource: "pods"})
	clients := New()
	for name, g := range map[string]generic.RESTOptionsGetter{
		// A getter that is not upstream's storage factory may make any decorator.
		"another getter, undecorated":   generic.RESTOptions{StorageConfig: config, Decorator: generic.UndecoratedStorage},
		"another getter, own decorator": generic.RESTOptions{StorageConfig: config, Decorator: mine},
	} {
		want, _ := g.GetRESTOptions(schema.GroupResource{Resource: "pods"}, nil)
		got, err := clients.Wrap(g).GetRESTOptions(schema.GroupResource{Resource: "pods"}, nil)
		if err != nil || reflect.ValueOf(got.Decorator).Pointer() != reflect.ValueOf(want.Decorator).Pointer() {
			t.Errorf("%s: decorator replaced (err %v)", name, err)
		}
	}
	if clients.Wrap(nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}

func TestShareable(t *testing.T) {
	plain := storagebackend.NewDefaultConfig("/registry", nil).ForResource(schema.GroupResource{Resource: "pods"})
	plain.CompactionInterval = 0 // upstream's default is 5m; a tenant's is 0
	with := func(change func(*storagebackend.ConfigForResource)) *storagebackend.ConfigForResource {
		c := *plain
		change(&c)
		return &c
	}
	for _, tc := range []struct {
		name   string
		config *storagebackend.ConfigForResource
		want   bool
	}{
		{"etcd3, default type", plain, true},
		{"etcd3 named", with(func(c *storagebackend.ConfigForResource) { c.Type = storagebackend.StorageTypeETCD3 }), true},
		{"no config", nil, false},
		{"another storage type", with(func(c *storagebackend.ConfigForResource) { c.Type = "etcd2" }), false},
		{"compaction on", with(func(c *storagebackend.ConfigForResource) { c.CompactionInterval = time.Minute }), false},
		{"egress dialer", with(func(c *storagebackend.ConfigForResource) {
			c.Transport.EgressLookup = func(egressselector.NetworkContext) (utilnet.DialFunc, error) { return nil, nil }
		}), false},
	} {
		if got := shareable(tc.config); got != tc.want {
			t.Errorf("%s: shareable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCompactedContinueExpires: once another apiserver of the same etcd compacts past a continue
// token's revision (and records it under compact_rev_key, as upstream's compactor does), a
// list with the token gets 410 Gone with a token for an inconsistent continuation, as in
// Kubernetes, instead of the watch cache serving the compacted revision from its snapshot for
// good. Takes up to ~20 s: the watch cache reads the compaction revision every 15 s.
func TestCompactedContinueExpires(t *testing.T) {
	url := testetcd.Start(t)
	clients := New()
	t.Cleanup(clients.Close)
	s, _ := podStorage(t, clients.Wrap(getter(url)), "pods")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	create := func(name string) {
		t.Helper()
		if err := s.Create(ctx, "/pods/ns/"+name, &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}, &example.Pod{}, 0); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		create(name)
	}
	list := func(cont string) (*example.PodList, error) {
		pred := storage.Everything
		pred.Limit, pred.Continue = 1, cont
		var out example.PodList
		return &out, s.GetList(ctx, "/pods/ns", storage.ListOptions{Recursive: true, Predicate: pred}, &out)
	}
	var first *example.PodList
	// The watch cache refuses lists until it has listed itself.
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		var err error
		first, err = list("")
		return err == nil, nil
	})
	if err != nil || first.Continue == "" {
		t.Fatalf("first page: %v, continue %q", err, first.Continue)
	}
	create("d") // a revision after the token's, to compact up to

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put, err := cli.Put(ctx, "compact_rev_key", "")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	if _, err := cli.Put(ctx, "compact_rev_key", strconv.FormatInt(rev, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}

	var last error
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(context.Context) (bool, error) {
		_, last = list(first.Continue)
		return last != nil, nil
	})
	if err != nil {
		t.Fatalf("a list at the compacted revision %s still succeeds after the compaction at %d: the watch cache did not learn of it", first.ResourceVersion, rev)
	}
	status, ok := last.(apierrors.APIStatus)
	if !apierrors.IsResourceExpired(last) || !ok || status.Status().ListMeta.Continue == "" {
		t.Fatalf("list at the compacted revision: %v, want 410 Gone with a continue token", last)
	}
	next, err := list(status.Status().ListMeta.Continue)
	if err != nil || len(next.Items) != 1 || next.Items[0].Name != "b" {
		t.Fatalf("inconsistent continuation: %v, %v, want pod b", err, next)
	}
}
