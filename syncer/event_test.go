package syncer

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/testmem"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

func superEvent(kind, name string) *corev1.Event {
	ts := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: testSuperNS, Name: name + ".1", ResourceVersion: "9"},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: testSuperNS, Name: name, UID: "super-uid", APIVersion: "v1", ResourceVersion: "5"},
		Reason:         "Scheduled", Message: "Successfully assigned " + testSuperNS + "/" + name + " to node-1",
		Source: corev1.EventSource{Component: "default-scheduler"}, Type: corev1.EventTypeNormal,
		FirstTimestamp: ts, LastTimestamp: ts, Count: 1,
	}
}

func TestTranslateEvent(t *testing.T) {
	se := superEvent("Pod", "web")
	want := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: "web.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "uid-web", APIVersion: "v1"},
		Reason:         "Scheduled", Message: "Successfully assigned default/web to node-1",
		Source: se.Source, Type: corev1.EventTypeNormal, FirstTimestamp: se.FirstTimestamp, LastTimestamp: se.LastTimestamp, Count: 1,
	}
	if diff := cmp.Diff(want, translateEvent(se, "default", "uid-web")); diff != "" {
		t.Errorf("translateEvent (-want +got):\n%s", diff)
	}
	se.Message = `pod: "web_` + testSuperNS + `(uid)". kubelet does not have ClusterDNS IP configured`
	if got := translateEvent(se, "default", "uid-web").Message; got != `pod: "web_default(uid)". kubelet does not have ClusterDNS IP configured` {
		t.Errorf("message not translated: %q", got)
	}
}

func TestSyncEvent(t *testing.T) {
	cases := map[string]struct {
		super  []object
		tenant []object
		// createErr, when set, is the tenant's answer to every event create.
		createErr error
		want      []string
	}{
		"event about a synced pod goes up": {
			super:  []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj(), superEvent("Pod", "web")},
			tenant: []object{MakePod("default", "web").Obj()},
			want:   []string{"create events default/web.1"},
		},
		"event about a foreign pod stays": {
			super:  []object{MakePod(testSuperNS, "web").Obj(), superEvent("Pod", "web")},
			tenant: []object{MakePod("default", "web").Obj()},
		},
		"event about an earlier tenant pod stays": {
			super:  []object{MakePod(testSuperNS, "web").Owned("uid-old").Obj(), superEvent("Pod", "web")},
			tenant: []object{MakePod("default", "web").Obj()},
		},
		"event about a synced claim goes up": {
			super:  []object{translatePVC(pvcNamed("web"), testOwner), superEvent("PersistentVolumeClaim", "web")},
			tenant: []object{pvcNamed("web")},
			want:   []string{"create events default/web.1"},
		},
		"event about a foreign claim stays": {
			super:  []object{&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: testSuperNS, Name: "web"}}, superEvent("PersistentVolumeClaim", "web")},
			tenant: []object{pvcNamed("web")},
		},
		"event about a synced ingress goes up": {
			super:  []object{&networkingv1.Ingress{ObjectMeta: stampedMeta}, superEvent("Ingress", "web")},
			tenant: []object{&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"}}},
			want:   []string{"create events default/web.1"},
		},
		"first event already in the tenant (a restart): the create fails, nothing else": {
			super:  []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj(), superEvent("Pod", "web")},
			tenant: []object{MakePod("default", "web").Obj(), translateEvent(superEvent("Pod", "web"), "default", "uid-web")},
			want:   []string{"create events default/web.1"},
		},
		"repeated event: read, then updated": {
			super:  []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj(), repeated(superEvent("Pod", "web"))},
			tenant: []object{MakePod("default", "web").Obj(), translateEvent(superEvent("Pod", "web"), "default", "uid-web")},
			want:   []string{"update events default/web.1"},
		},
		"event about a kind that is not synced up stays": {
			super: []object{superEvent("ConfigMap", "web")},
		},
		// The tenant apiserver refuses new content in a namespace being deleted, and the
		// namespace's events go with it.
		"event in a terminating tenant namespace stays": {
			super:  []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj(), superEvent("Pod", "web")},
			tenant: []object{terminatingTenantNS(), MakePod("default", "web").Obj()},
		},
		"event refused by a namespace terminating ahead of the cache: dropped": {
			super:     []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj(), superEvent("Pod", "web")},
			tenant:    []object{MakePod("default", "web").Obj()},
			createErr: namespaceTerminatingError("events", "web.1"),
			want:      []string{"create events default/web.1"},
		},
		"repeated event refused by a namespace terminating ahead of the cache: dropped": {
			super:     []object{MakePod(testSuperNS, "web").Owned("uid-web").Obj(), repeated(superEvent("Pod", "web"))},
			tenant:    []object{MakePod("default", "web").Obj()},
			createErr: namespaceTerminatingError("events", "web.1"),
			want:      []string{"create events default/web.1"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.super, tc.tenant)
			if tc.createErr != nil {
				h.tenantCS.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, tc.createErr
				})
			}
			if err := h.s.syncEvent(testContext(t), h.t, "default", "web.1"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, writes(h.tenantCS)); diff != "" {
				t.Errorf("tenant writes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeepSuperEvent: the super event cache keeps the events of every namespace named like a
// super namespace, hash-truncated names included, and of no other.
func TestKeepSuperEvent(t *testing.T) {
	longNS := mapping.SuperNamespace(testKey, strings.Repeat("n", 60))
	if len(longNS) != mapping.MaxNamespaceLength || !strings.HasPrefix(longNS, testKey+"-") {
		t.Fatalf("test premise: %q is not a hash-truncated super namespace", longNS)
	}
	oddKey := v1alpha1.ClusterKey("team-a", "1st.Cluster_of-ours", "uid-1") // "v1st-clust-…"
	for ns, want := range map[string]bool{
		testSuperNS:                          true,
		longNS:                               true,
		mapping.SuperNamespace(oddKey, "db"): true,
		"other-0a1b2c3d-kube-system":         true,  // a tenant namespace named like the super cluster's own
		"ci-20260101-build":                  true,  // foreign, named alike: kept, and the readers' labels check tells
		"default":                            false, // the super cluster's own: its nodes', its workloads'
		"kube-system":                        false,
		"team-a":                             false,
		testKey:                              false, // no '-' after the key
		"demo-5c9a845-default":               false, // 7 hex digits
		"a-1234-default":                     false, // a key ClusterKey does not make
	} {
		if got := keepSuperEvent(ns); got != want {
			t.Errorf("keepSuperEvent(%q) = %v, want %v", ns, got, want)
		}
	}
}

// TestSuperEventCache: the super event cache, filled by its reflector from the super cluster's
// list and watch, holds the events of super namespaces in full (without managed fields) and
// none of the super cluster's other events, and passes on every event it keeps.
func TestSuperEventCache(t *testing.T) {
	foreign := func(name string) *corev1.Event {
		ev := superEvent("Pod", name)
		ev.Namespace, ev.InvolvedObject.Namespace = "team-a", "team-a"
		return ev
	}
	ours := func(name string) *corev1.Event {
		ev := superEvent("Pod", name)
		ev.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-scheduler", Operation: metav1.ManagedFieldsOperationUpdate}}
		return ev
	}
	super := fake.NewClientset(foreign("web"), ours("web"))
	watching := make(chan struct{}) // closed once the reflector watches: later events come by it
	var once sync.Once
	super.PrependWatchReactor("events", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := super.Tracker().Watch(a.GetResource(), a.GetNamespace())
		once.Do(func() { close(watching) })
		return true, w, err
	})
	var mu sync.Mutex
	var changed []string
	c := newSuperEventCache(super, func(obj any) {
		mu.Lock()
		defer mu.Unlock()
		changed = append(changed, obj.(*corev1.Event).Namespace+"/"+obj.(*corev1.Event).Name)
	})
	go c.run(t.Context())
	<-watching
	for _, ev := range []*corev1.Event{foreign("db"), ours("db")} { // by the watch; ours last
		if _, err := super.CoreV1().Events(ev.Namespace).Create(t.Context(), ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		_, found, err := c.GetByKey(testSuperNS + "/db.1")
		return found, err
	}); err != nil {
		t.Fatalf("the watched event of a super namespace never reached the cache: %v", err)
	}
	if !c.hasSynced() {
		t.Error("hasSynced() = false after the first list")
	}
	want := []any{superEvent("Pod", "db"), superEvent("Pod", "web")}
	got := c.List()
	sortByName := cmpopts.SortSlices(func(a, b any) bool { return a.(*corev1.Event).Name < b.(*corev1.Event).Name })
	if diff := cmp.Diff(want, got, sortByName, cmpopts.IgnoreFields(corev1.Event{}, "TypeMeta")); diff != "" {
		t.Errorf("cached events (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{testSuperNS + "/web.1", testSuperNS + "/db.1"}, changed); diff != "" {
		t.Errorf("events passed on (-want +got):\n%s", diff)
	}
}

// replaceCounter is a superEventCache that counts the events each Replace is given.
type replaceCounter struct {
	*superEventCache
	given []int
}

func (r *replaceCounter) Replace(list []any, resourceVersion string) error {
	n := 0
	for _, obj := range list {
		if _, ok := obj.(*corev1.Event); ok {
			n++
		}
	}
	r.given = append(r.given, n)
	return r.superEventCache.Replace(list, resourceVersion)
}

// streamingEvents is a ListerWatcher of super events that streams the first list (watch-list):
// every event on w, then the bookmark that ends the initial events; a List fails the test.
func streamingEvents(t testing.TB, w watch.Interface) *cache.ListWatch {
	var calls atomic.Int32
	return &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			t.Error("the reflector listed the events; want them streamed (watch-list)")
			return &corev1.EventList{}, nil
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if calls.Add(1) == 1 {
				if o.SendInitialEvents == nil || !*o.SendInitialEvents {
					t.Errorf("first watch %+v, want sendInitialEvents", o)
				}
				return w, nil
			}
			return watch.NewFake(), nil // nothing more
		},
	}
}

// initialEventsEnd is the bookmark that ends a watch-list's initial events.
func initialEventsEnd(rv string) watch.Event {
	return watch.Event{Type: watch.Bookmark, Object: &corev1.Event{ObjectMeta: metav1.ObjectMeta{
		ResourceVersion: rv, Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}}
}

// TestSuperEventCacheStreamedList: when the first list of super events streams in (client-go's
// watch-list), the reflector gathers it through the cache's Transformer, so the foreign events
// come to Replace as placeholders and are never held all at once; the cache ends up with the
// events of super namespaces, as from a list.
func TestSuperEventCacheStreamedList(t *testing.T) {
	w := watch.NewFake()
	c := &replaceCounter{superEventCache: newSuperEventCache(fake.NewClientset(), func(any) {})}
	r := cache.NewReflectorWithOptions(streamingEvents(t, w), &corev1.Event{}, c, cache.ReflectorOptions{Name: "test events"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.RunWithContext(ctx) }()
	defer func() { cancel(); <-done }()
	for i, name := range []string{"a", "b", "c"} {
		ev := superEvent("Pod", name)
		ev.Namespace, ev.ResourceVersion = "team-a", fmt.Sprint(10+i)
		w.Add(ev)
	}
	ours := superEvent("Pod", "web")
	ours.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-scheduler"}}
	w.Add(ours)
	w.Action(initialEventsEnd("20").Type, initialEventsEnd("20").Object)
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, wait.ForeverTestTimeout, true, func(context.Context) (bool, error) {
		return c.hasSynced(), nil
	}); err != nil {
		t.Fatalf("the streamed list never reached the cache: %v", err)
	}
	if diff := cmp.Diff([]any{superEvent("Pod", "web")}, c.List(), cmpopts.IgnoreFields(corev1.Event{}, "TypeMeta")); diff != "" {
		t.Errorf("cached events (-want +got):\n%s", diff)
	}
	// The kept event; the three foreign ones came as placeholders.
	if diff := cmp.Diff([]int{1}, c.given); diff != "" {
		t.Errorf("events given to Replace (-want +got):\n%s", diff)
	}
}

// repeated is ev seen a second time.
func repeated(ev *corev1.Event) *corev1.Event {
	ev.Count = 2
	ev.LastTimestamp = metav1.NewTime(ev.LastTimestamp.Add(time.Minute))
	return ev
}

func pvcNamed(name string) *corev1.PersistentVolumeClaim {
	pvc := tenantPVC()
	pvc.Name = name
	return pvc
}

// TestQueueSuperEvents: when the syncer starts serving a tenant, the super events in the
// tenant's super namespaces that the tenant lacks, or has with an older count, are queued, and
// no others; all of them when the tenant's events cannot be listed.
func TestQueueSuperEvents(t *testing.T) {
	tenantNS := func(name string, owner mapping.Owner) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: mapping.SuperNamespaceMeta(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, owner)}
	}
	other := mapping.Owner{ClusterKey: "other-0a1b2c3d", VirtualCluster: "default/other"}
	inOther := superEvent("Pod", "db")
	inOther.Namespace = mapping.SuperNamespace(other.ClusterKey, "default")
	inSuper := superEvent("Pod", "node-1")
	inSuper.Namespace = "default"
	super := []object{
		tenantNS("default", testOwner), tenantNS("default", other),
		superEvent("Pod", "web"), repeated(superEvent("Pod", "db")), superEvent("Service", "api"), inOther, inSuper,
	}
	copied := func(se *corev1.Event) *corev1.Event { return translateEvent(se, "default", "uid") }
	for name, tc := range map[string]struct {
		tenant   []object
		listFail bool
		want     []string
	}{
		"none in the tenant": {want: []string{"api.1", "db.1", "web.1"}},
		"copies up to date are not queued": {
			tenant: []object{copied(superEvent("Pod", "web")), copied(repeated(superEvent("Pod", "db")))},
			want:   []string{"api.1"},
		},
		"a copy with an older count is queued": {
			tenant: []object{copied(superEvent("Pod", "web")), copied(superEvent("Pod", "db"))},
			want:   []string{"api.1", "db.1"},
		},
		"all when the tenant's events cannot be listed": {
			tenant:   []object{copied(superEvent("Pod", "web")), copied(repeated(superEvent("Pod", "db")))},
			listFail: true,
			want:     []string{"api.1", "db.1", "web.1"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, super, nil)
			for _, o := range tc.tenant {
				if err := h.tenantCS.Tracker().Add(o); err != nil {
					t.Fatal(err)
				}
			}
			if tc.listFail {
				h.tenantCS.PrependReactor("list", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("connection refused")
				})
			}
			h.s.queueSuperEvents(testContext(t), h.t)
			var got []string
			for h.s.queue.Len(testKey) > 0 {
				k, _ := h.s.queue.Get()
				if k.Item.Kind != kindEvent || k.Item.Namespace != "default" {
					t.Errorf("queued %v, want events of tenant namespace default", k.Item)
				}
				got = append(got, k.Item.Name)
				h.s.queue.Done(k.Tenant, k.Item)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
			if n := h.s.queue.Len(other.ClusterKey); n != 0 {
				t.Errorf("%d keys queued for the other tenant, want 0", n)
			}
		})
	}
}

// BenchmarkCachedEventBytes measures what a super event costs in the syncer's memory: in full in
// an informer's indexer (every event, before superEventCache), as a stub of name, namespace, UID
// and version there (the trimming measured in session 31 and not kept), and through
// superEventCache, in a super namespace (kept) and in another (dropped). The streamed-list cases
// measure what the first list holds when it streams in (watch-list), read before its last event
// has come: through a plain store as an informer's (every event in full) and through
// superEventCache (its Transformer), of events in other namespaces. docs/benchmarks.md, sessions
// 31, 36 and 37.
//
//	go test ./syncer/ -run '^$' -bench CachedEventBytes -benchtime 1x
func BenchmarkCachedEventBytes(b *testing.B) {
	const n = 10000
	heap := func() int64 { return testmem.Read().Heap }
	event := func(i int, superNS, stub bool) *corev1.Event {
		ns, name := fmt.Sprintf("team-%d", i%50), fmt.Sprintf("web-7d4b9c8f5-%05d", i)
		if superNS {
			ns = mapping.SuperNamespace(testKey, ns)
		}
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s.%x", name, 0x1870000000+i),
				UID: types.UID(fmt.Sprintf("5f3c1a2b-1111-2222-3333-%012d", i)), ResourceVersion: fmt.Sprint(100000 + i), CreationTimestamp: metav1.Now()},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, APIVersion: "v1",
				UID: types.UID(fmt.Sprintf("9a8b7c6d-1111-2222-3333-%012d", i)), ResourceVersion: fmt.Sprint(99000 + i)},
			Reason: "Scheduled", Message: fmt.Sprintf("Successfully assigned %s/%s to node-%d", ns, name, i%12),
			Source: corev1.EventSource{Component: "default-scheduler"}, Type: corev1.EventTypeNormal,
			FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
			ReportingController: "default-scheduler", ReportingInstance: "default-scheduler-node",
		}
		if stub {
			ev = &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ev.Namespace, Name: ev.Name, UID: ev.UID, ResourceVersion: ev.ResourceVersion}}
		}
		return ev
	}
	indexer := func() cache.Store {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	eventCache := func() cache.Store { return newSuperEventCache(fake.NewClientset(), func(any) {}) }
	for _, c := range []struct {
		name     string
		store    func() cache.Store
		stub     bool
		superNSs bool // the events are in namespaces named like super namespaces
	}{
		{"full", indexer, false, false},
		{"stub", indexer, true, false},
		{"superEventCache/super-namespace", eventCache, false, true},
		{"superEventCache/other-namespace", eventCache, false, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				store := c.store()
				before := heap()
				for i := range n {
					_ = store.Add(event(i, c.superNSs, c.stub))
				}
				b.ReportMetric(float64(heap()-before)/n, "bytes/event")
				goruntime.KeepAlive(store)
			}
		})
	}
	for _, c := range []struct {
		name  string
		store func() cache.Store
	}{
		{"streamed-list/full", indexer},
		{"streamed-list/superEventCache/other-namespace", eventCache},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				w := watch.NewFake() // unbuffered: each Add returns once the reflector has the event
				r := cache.NewReflectorWithOptions(streamingEvents(b, w), &corev1.Event{}, c.store(), cache.ReflectorOptions{Name: "bench events"})
				ctx, cancel := context.WithCancel(b.Context())
				done := make(chan struct{})
				go func() { defer close(done); r.RunWithContext(ctx) }()
				before := heap()
				for i := range n + 1 { // the last one's Add returns once the n before it are stored
					w.Add(event(i, false, false))
				}
				b.ReportMetric(float64(heap()-before)/n, "bytes/event")
				end := initialEventsEnd("1")
				w.Action(end.Type, end.Object)
				cancel()
				<-done
			}
		})
	}
}
