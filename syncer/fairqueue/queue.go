package fairqueue

import (
	"slices"
	"sync"
	"time"
)

// Queue is a fair, de-duplicating work queue of items of type T, partitioned by tenant.
//
// Contract, per (tenant, item) pair, the same as client-go's workqueue: an item added while it
// is queued is queued once; an item added while it is being processed (between Get and Done) is
// queued again only when Done is called, so no two workers handle it at once. Within a
// tenant, items queued with AddUrgent come out before those queued with Add (at most urgentRun
// in a row while the others wait), each lane in order. Across tenants, Get serves the tenants
// with queued items in turn, one item each, except that a tenant with fewer items being
// processed goes first, and with LimitPerTenant no tenant has more than that many items in
// processing (one more if it is urgent and the others are not; twice as many for a tenant with
// fewer queued than the others, half and no extra one for one with more): a tenant whose items
// take long (a flood of creates against a busy apiserver) cannot hold every worker while another
// tenant waits.
type Queue[T comparable] struct {
	mu       sync.Mutex
	cond     *sync.Cond
	tenants  map[string]*subQueue[T]
	ring     []string // tenants with queued items, in serving order; each at most once
	queued   int      // items queued for all tenants (not counting those in processing)
	shutdown bool

	backoff *backoff[T] // AddRateLimited's, per item (backoff.go)
	waiting *waiting[T] // items of AddAfter until they are due (delay.go)
	onWait  func(tenant string, urgent bool, wait time.Duration)
	// perTenant is the most items one tenant has in processing at once; 0 is no limit.
	perTenant int
	// anyTenant serves every tenant without AddTenant: for the tests of the serving order.
	anyTenant bool
}

// Key is an item together with its tenant.
type Key[T comparable] struct {
	Tenant string
	Item   T
}

type subQueue[T comparable] struct {
	urgent, queue []entry[T] // the two lanes: urgent is served first, up to urgentRun in a row
	dirty         map[T]bool // queued or to be queued again after Done; true: in the urgent lane
	processing    map[T]bool // true: handed out from the urgent lane
	inRing        bool
	urgentServed  int  // urgent items handed out in a row while the other lane had items
	served        bool // between AddTenant and RemoveTenant: only then are items accepted
}

// urgentRun is how many urgent items a tenant's sub-queue hands out in a row while it has other
// items queued: a tenant that keeps creating objects still gets a quarter of its turns for the
// status and events of those it created before.
const urgentRun = 3

func (s *subQueue[T]) queued() int { return len(s.urgent) + len(s.queue) }

// urgentBusy is whether an item of the urgent lane is in processing.
func (s *subQueue[T]) urgentBusy() bool {
	for _, urgent := range s.processing {
		if urgent {
			return true
		}
	}
	return false
}

// entry is a queued item and when it was queued.
type entry[T comparable] struct {
	item T
	at   time.Time
}

// New returns an empty queue whose AddRateLimited backs off exponentially per item from
// baseDelay to maxDelay.
func New[T comparable](baseDelay, maxDelay time.Duration) *Queue[T] {
	q := &Queue[T]{
		tenants: map[string]*subQueue[T]{},
		backoff: newBackoff[T](baseDelay, maxDelay),
	}
	q.cond = sync.NewCond(&q.mu)
	q.waiting = newWaiting(func(k Key[T]) { q.Add(k.Tenant, k.Item) })
	return q
}

// Add queues item for tenant unless it is queued already.
func (q *Queue[T]) Add(tenant string, item T) { q.add(tenant, item, false) }

// AddUrgent queues item for tenant ahead of the tenant's items queued with Add (behind its other
// urgent ones; after urgentRun urgent items one of the others goes) unless it is queued
// already; an item already queued keeps its place. The syncer queues new tenant objects so:
// their super copies are what a tenant waits for, while the status, events and nodes that
// follow may wait behind them.
func (q *Queue[T]) AddUrgent(tenant string, item T) { q.add(tenant, item, true) }

// AddTenant has the queue accept tenant's items, from now until RemoveTenant; items of other
// tenants are dropped. A tenant added again after RemoveTenant starts with nothing queued, but
// an item that a worker still holds from before is not handed out again until its Done.
func (q *Queue[T]) AddTenant(tenant string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sub(tenant).served = true
}

// sub is tenant's sub-queue, made if it has none; q.mu is held.
func (q *Queue[T]) sub(tenant string) *subQueue[T] {
	s := q.tenants[tenant]
	if s == nil {
		s = &subQueue[T]{dirty: map[T]bool{}, processing: map[T]bool{}, served: q.anyTenant}
		q.tenants[tenant] = s
	}
	return s
}

// serves is whether the queue accepts tenant's items; q.mu is held.
func (q *Queue[T]) serves(tenant string) bool {
	if s := q.tenants[tenant]; s != nil {
		return s.served
	}
	return q.anyTenant
}

func (q *Queue[T]) add(tenant string, item T, urgent bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(tenant, item, urgent)
}

func (q *Queue[T]) addLocked(tenant string, item T, urgent bool) {
	if q.shutdown || !q.serves(tenant) {
		return
	}
	s := q.sub(tenant)
	if _, ok := s.dirty[item]; ok {
		return
	}
	s.dirty[item] = urgent
	if _, ok := s.processing[item]; ok {
		return
	}
	q.push(tenant, s, item, urgent)
}

func (q *Queue[T]) push(tenant string, s *subQueue[T], item T, urgent bool) {
	q.queued++
	if urgent {
		s.urgent = append(s.urgent, entry[T]{item, time.Now()})
	} else {
		s.queue = append(s.queue, entry[T]{item, time.Now()})
	}
	if !s.inRing {
		s.inRing = true
		q.ring = append(q.ring, tenant)
	}
	q.cond.Signal()
}

// AddAfter queues item for tenant once d has passed. An item that already waits is queued
// once, at the earlier of the two times.
func (q *Queue[T]) AddAfter(tenant string, item T, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addAfterLocked(tenant, item, d)
}

// addAfterLocked is AddAfter with q.mu held: so RemoveTenant, which drops the waits under q.mu,
// drops every wait this lets in.
func (q *Queue[T]) addAfterLocked(tenant string, item T, d time.Duration) {
	switch {
	case d <= 0:
		q.addLocked(tenant, item, false)
	case q.serves(tenant):
		q.waiting.add(Key[T]{tenant, item}, time.Now().Add(d))
	}
}

// Waiting is how many items wait to be queued by AddAfter or AddRateLimited.
func (q *Queue[T]) Waiting() int { return q.waiting.len() }

// AddRateLimited queues item after its current back-off, which doubles with every call until
// Forget.
func (q *Queue[T]) AddRateLimited(tenant string, item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.serves(tenant) { // a count for a tenant not served would never be forgotten
		q.addAfterLocked(tenant, item, q.backoff.when(tenant, item))
	}
}

// Forget resets item's back-off.
func (q *Queue[T]) Forget(tenant string, item T) {
	q.backoff.forget(tenant, item)
}

// NumRequeues is how many times item was queued by AddRateLimited since its last Forget.
func (q *Queue[T]) NumRequeues(tenant string, item T) int {
	return q.backoff.numRequeues(tenant, item)
}

// Get blocks until an item may be handed out and returns it with its tenant. Of the tenants with
// queued items that may be served (servable), the one with the fewest in processing goes first,
// ties in turn. shutdown is true once ShutDown was called; the other results are then zero.
func (q *Queue[T]) Get() (key Key[T], shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	next := -1
	for {
		if q.shutdown {
			return key, true
		}
		if next = q.pick(); next >= 0 {
			break
		}
		// Nothing queued, or every tenant with queued items is at its limit: an Add or the
		// Done of such a tenant's item signals.
		q.cond.Wait()
	}
	tenant := q.ring[next]
	s := q.tenants[tenant]
	_, urgentOnly := q.servable(s)
	q.ring = slices.Delete(q.ring, next, next+1)
	q.queued--
	urgent := urgentOnly || len(s.urgent) > 0 && (len(s.queue) == 0 || s.urgentServed < urgentRun)
	lane := &s.queue
	switch {
	case urgent:
		lane = &s.urgent
		if len(s.queue) > 0 {
			s.urgentServed++
		}
	default:
		s.urgentServed = 0
	}
	e := (*lane)[0]
	item := e.item
	(*lane)[0] = entry[T]{}
	*lane = (*lane)[1:]
	if len(*lane) == 0 {
		*lane = nil // let the backing array of a drained flood go
	}
	if q.onWait != nil {
		q.onWait(tenant, urgent, time.Since(e.at))
	}
	if s.queued() > 0 {
		q.ring = append(q.ring, tenant)
	} else {
		s.inRing = false
	}
	delete(s.dirty, item)
	s.processing[item] = urgent
	// Wake a waiting worker when another item may go now: another tenant's limit may have risen
	// with s out of the ring, or s's own with its backlog down. (With s still in the ring, one
	// item fewer queued only lowers the others' limits.)
	if ok, _ := q.servable(s); !s.inRing && len(q.ring) > 0 || s.inRing && ok {
		q.cond.Signal()
	}
	return Key[T]{tenant, item}, false
}

// pick is the index in the ring of the tenant Get serves next, or -1 when none may be served.
func (q *Queue[T]) pick() int {
	next := -1
	for i, t := range q.ring {
		s := q.tenants[t]
		if ok, _ := q.servable(s); !ok {
			continue
		}
		if next < 0 || len(s.processing) < len(q.tenants[q.ring[next]].processing) {
			next = i
		}
	}
	return next
}

// servable is whether Get may hand out one of s's queued items: while s has fewer items in
// processing than its limit, and one more when it is urgent and none of s's urgent items is in
// processing (urgentOnly), so that a new object does not wait for the tenant's slow updates
// while a flood's creates still take no more than the limit. The limit is the per-tenant limit
// while s is the only tenant with queued items or has as many queued as their mean; twice that
// when it has fewer (a light tenant), half (at least 1) when it has more (a heavy one), with no
// urgent item over it: a heavy tenant's new objects wait behind its backlog anyway. So while
// one tenant floods, the others' objects are copied as fast as they come although every request
// of the saturated super cluster is slower, and the flood takes fewer of its requests.
func (q *Queue[T]) servable(s *subQueue[T]) (ok, urgentOnly bool) {
	limit, heavy := q.perTenant, false
	if limit > 0 && len(q.ring) > 1 {
		switch mine, all := s.queued()*len(q.ring), q.queued; {
		case mine < all:
			limit *= 2
		case mine > all:
			limit, heavy = max(1, limit/2), true
		}
	}
	switch n := len(s.processing); {
	case limit <= 0 || n < limit:
		return true, false
	case !heavy && n == limit && len(s.urgent) > 0 && !s.urgentBusy():
		return true, true
	}
	return false, false
}

// Done marks item as processed; if it was added meanwhile, it is queued again.
func (q *Queue[T]) Done(tenant string, item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.tenants[tenant]
	if s == nil {
		return
	}
	delete(s.processing, item)
	if !s.served { // removed, and not added again
		if len(s.processing) == 0 {
			delete(q.tenants, tenant)
		}
		return
	}
	if urgent, ok := s.dirty[item]; ok && !q.shutdown {
		q.push(tenant, s, item, urgent)
	} else if q.perTenant > 0 && s.inRing {
		q.cond.Signal() // the tenant may have been at its limit with items queued: a waiting worker may take one
	}
}

// LimitPerTenant keeps any one tenant from having more than n items in processing at once (n+1
// when the last is urgent and the n are not), so the other workers stay free for the other
// tenants; a tenant with fewer queued items than the mean of the tenants with queued items may
// have 2n, one with more n/2 and no extra urgent one (servable). n ≤ 0 is no limit. Set it
// before the first Get.
func (q *Queue[T]) LimitPerTenant(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.perTenant = n
}

// Len is the number of items queued for tenant (not counting those being processed).
func (q *Queue[T]) Len(tenant string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.tenants[tenant]; s != nil {
		return s.queued()
	}
	return 0
}

// Tenants lists the tenants the queue holds state for.
func (q *Queue[T]) Tenants() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.tenants))
	for t := range q.tenants {
		out = append(out, t)
	}
	return out
}

// RemoveTenant drops everything queued or waiting for tenant, and its items' back-off, and
// has the queue drop the tenant's items until AddTenant. Items being processed finish; until
// their Done the queue keeps them as held, so that if the tenant is added again meanwhile, they
// are still not handed out twice at once.
func (q *Queue[T]) RemoveTenant(tenant string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting.removeTenant(tenant)
	q.backoff.removeTenant(tenant)
	s := q.tenants[tenant]
	if s == nil {
		return
	}
	q.queued -= s.queued()
	s.urgent, s.queue, s.dirty = nil, nil, map[T]bool{}
	s.served, s.urgentServed = false, 0
	if len(s.processing) == 0 {
		delete(q.tenants, tenant)
	}
	if s.inRing {
		s.inRing = false
		q.ring = slices.DeleteFunc(q.ring, func(t string) bool { return t == tenant })
	}
	q.cond.Broadcast() // the others' limits may have changed
}

// ShutDown makes Get return shutdown=true in every waiting and future call.
func (q *Queue[T]) ShutDown() {
	q.waiting.stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	q.cond.Broadcast()
}

// OnWait has f told, for every item Get hands out, whether it came from the urgent lane and how
// long it waited in the queue (since it was queued, or queued again after Done). Set it before
// the first Get.
func (q *Queue[T]) OnWait(f func(tenant string, urgent bool, wait time.Duration)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.onWait = f
}

// CountBy counts the items queued for tenant by the group f puts them in.
func (q *Queue[T]) CountBy(tenant string, f func(T) string) map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]int{}
	if s := q.tenants[tenant]; s != nil {
		for _, lane := range [][]entry[T]{s.urgent, s.queue} {
			for _, e := range lane {
				out[f(e.item)]++
			}
		}
	}
	return out
}
