// Package fairqueue is the syncer's work queue: one sub-queue per tenant, served round-robin, with
// the de-duplication and "not twice at once" guarantees of client-go's workqueue within each
// tenant. A tenant that queues thousands of keys delays another tenant's key by at most one Get
// per other busy tenant, never by its own backlog; and a tenant with fewer keys being processed
// is served first, so that tenants share the workers' time, not only their turns. A per-tenant
// limit (LimitPerTenant) keeps one tenant from holding more than that many workers at once: the
// rest stay free, so another tenant's key starts as soon as it is queued. The limit follows the
// backlogs: while several tenants have keys queued, one with fewer than their mean may hold
// twice the limit and one with more half of it, so a quiet tenant whose every key takes longer
// under another's flood still keeps up, and the flood takes less of the shared super cluster. No
// worker waits for that: the lighter tenant's keys are the ones a worker may take, and once they
// are all taken the heavy tenant, alone with keys queued, has the whole limit again.
//
// Within a tenant there are two lanes: keys queued with AddUrgent (the syncer's: tenant objects
// just created or deleted) go before those queued with Add (changes, status, events), three in a
// row at most while the others wait, so a tenant's new pod does not queue behind the status of
// its earlier ones; and a tenant at its limit with only updates in processing may have one
// urgent item more in processing, so the new pod does not wait for a slow update either, unless
// the tenant is a heavy one, whose new objects wait behind its backlog anyway.
//
// Delayed adds (AddAfter, AddRateLimited) wait in one heap with one timer, as in client-go's
// delaying queue: an item waits once, for the earliest of the times it was added for, so the
// syncer's queueing of a pod for its token renewal on every sync leaves one wait per pod.
// AddRateLimited's back-off doubles per failure, as client-go's, but is counted per tenant, so
// RemoveTenant drops a tenant's counts with its items and waits.
//
// The queue takes a tenant's items only between AddTenant and RemoveTenant. A patrol, timer or
// retry that still holds a tenant being removed then leaves nothing behind for it, and a
// tenant removed and added again (its kubeconfig rotated) while a worker holds one of its items
// does not hand that item to a second worker before the first one's Done.
//
// It knows nothing about Kubernetes objects: items are any comparable key.
package fairqueue
