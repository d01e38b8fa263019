package syncer

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Tenant pods as the syncer last wrote them.
//
// A tenant pod's syncs come faster than its informer's events after a write: the syncer binds
// the pod, then the super pod's status change brings the next sync before the tenant cache shows
// the binding, and a status write is followed by another sync before the cache has it. Read from
// the cache alone, those syncs bind again or write the status again from an older copy: a
// conflict each, which the next event repairs, but a wasted request to the tenant. podWrites
// keeps what the syncer wrote until the cache catches up.

// podWriteTTL is how long the syncer trusts its own write of a tenant pod over the cache's older
// copy; the cache catches up within moments, and after this a sync reads the cache alone again.
const podWriteTTL = 30 * time.Second

// podWrites are the syncer's recent writes of one tenant's pods.
type podWrites struct {
	// statuses holds the pods the status writes returned, newer than the cache's (by
	// resourceVersion) until the cache has them.
	statuses cache.MutationCache

	mu sync.Mutex
	// binds are the pods bound by the syncer whose binding the cache has not shown yet, and when.
	binds   map[types.UID]time.Time
	sweptAt time.Time // when binds last lost the entries of pods deleted before they were seen bound
}

func newPodWrites(store cache.Store) *podWrites {
	return &podWrites{
		statuses: cache.NewIntegerResourceVersionMutationCache(klog.Background(), store, nil, podWriteTTL, false),
		binds:    map[types.UID]time.Time{},
	}
}

// get is the tenant pod ns/name from the cache, or as the syncer's last status write returned
// it when that is newer.
func (w *podWrites) get(ns, name string) (*corev1.Pod, bool, error) {
	return readBack[*corev1.Pod](w.statuses, ns, name)
}

// readBack is object ns/name of type T from mutation cache c: the cache's copy, or the
// syncer's own write of it when that is newer.
func readBack[T any](c cache.MutationCache, ns, name string) (T, bool, error) {
	var zero T
	obj, ok, err := c.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return zero, false, err
	}
	out, ok := obj.(T)
	return out, ok, nil
}

// wroteStatus records a status write's result p (which it takes over).
func (w *podWrites) wroteStatus(p *corev1.Pod) { readBackWrite(w.statuses, p) }

// readBackWrite records the syncer's write obj in mutation cache c, without the managed fields
// that its reads never look at (the informers drop them too: dropManagedFields).
func readBackWrite(c cache.MutationCache, obj metav1.Object) {
	obj.SetManagedFields(nil)
	c.Mutation(obj)
}

// caughtUp drops the syncer's own copy of object ns/name from mutation cache c once the cache
// has one as new: the MutationCache does so on a read. Called from the informer's events, it
// frees the copies soon after each write instead of when they expire.
func caughtUp(c cache.MutationCache, ns, name string) { _, _, _ = c.GetByKey(ns + "/" + name) }

// bound records that the syncer bound the pod with uid at now.
func (w *podWrites) bound(uid types.UID, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.binds[uid] = now
	if now.Sub(w.sweptAt) >= podWriteTTL {
		w.sweptAt = now
		for u, at := range w.binds {
			if now.Sub(at) >= podWriteTTL {
				delete(w.binds, u)
			}
		}
	}
}

// bindPending reports whether the syncer bound the pod with uid less than podWriteTTL before now.
func (w *podWrites) bindPending(uid types.UID, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.binds[uid]
	if ok && now.Sub(at) >= podWriteTTL {
		delete(w.binds, uid)
		return false
	}
	return ok
}

// seenBound forgets the binding of the pod with uid once the cache shows the pod bound.
func (w *podWrites) seenBound(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.binds, uid)
}
