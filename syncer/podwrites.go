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
	// statuses are the pods the status writes returned, read back until the cache has them.
	statuses ownWrites[*corev1.Pod]

	mu sync.Mutex
	// binds are the pods bound by the syncer whose binding the cache has not shown yet, and when.
	binds   map[types.UID]time.Time
	sweptAt time.Time // when binds last lost the entries of pods deleted before they were seen bound
}

func newPodWrites(store cache.Store) *podWrites {
	return &podWrites{statuses: newOwnWrites[*corev1.Pod](store, podWriteTTL), binds: map[types.UID]time.Time{}}
}

// ownWrites is an informer's store with the syncer's own writes read back (client-go's
// MutationCache): a read gives the store's copy, or the syncer's last write of the object when
// that is newer by resourceVersion, for at most the ttl it was made with. Objects the store
// has never had are not read back: one deleted moments after its creation would look present.
type ownWrites[T metav1.Object] struct{ c cache.MutationCache }

func newOwnWrites[T metav1.Object](store cache.Store, ttl time.Duration) ownWrites[T] {
	return ownWrites[T]{cache.NewIntegerResourceVersionMutationCache(klog.Background(), store, nil, ttl, false)}
}

// get is object ns/name: the store's copy, or the syncer's own newer write of it.
func (w ownWrites[T]) get(ns, name string) (T, bool, error) {
	var zero T
	obj, ok, err := w.c.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return zero, false, err
	}
	out, ok := obj.(T)
	return out, ok, nil
}

// wrote records obj, what a write of the syncer returned (which it takes over), without the
// managed fields that its reads never look at (the informers drop them too: dropManagedFields).
func (w ownWrites[T]) wrote(obj T) {
	obj.SetManagedFields(nil)
	w.c.Mutation(obj)
}

// caughtUp drops the syncer's own copy of object ns/name once the store has one as new (the
// MutationCache does so on a read). Called from the informer's events, it frees the copies
// soon after each write instead of when they expire.
func (w ownWrites[T]) caughtUp(ns, name string) { _, _, _ = w.get(ns, name) }

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
