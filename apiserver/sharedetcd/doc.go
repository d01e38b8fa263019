// Package sharedetcd gives every resource of one kube-apiserver the same etcd
// connection.
//
// Upstream's storage factory (k8s.io/apiserver/pkg/storage/storagebackend/factory)
// dials a new etcd client for every resource it stores: an empty tenant
// apiserver of v1.36 holds about 64 connections to etcd, each with its gRPC
// transport, buffers and goroutines on both ends (kubernetes/kubernetes#111622,
// open). Every tenant of a super cluster talks to the same shared etcd, so
// that is 64 connections per tenant at the etcd too.
//
// Clients.Wrap wraps a RESTOptionsGetter so that the storage of each resource
// is built the way upstream builds it (the same etcd3 store, the same watch
// cache) on one client per etcd transport instead. Each store still gets its
// own etcd Watcher, so each resource keeps its own gRPC watch stream, as
// before; only the connection under the streams is shared.
//
// Left to upstream, unchanged: storage with a transport this package does not
// reproduce (an egress selector for etcd), storage with etcd compaction on
// (--etcd-compaction-interval > 0; vnest tenants leave compaction to the owner
// of the shared etcd), decorators other than upstream's two (watch cache or
// none), and the few stores upstream creates without a RESTOptionsGetter (the
// endpoint lease reconciler, the Service IP and port allocators) and the etcd
// health checks. Those keep their own clients.
//
// Compactions: a tenant apiserver does not compact (compaction is etcd-wide
// and belongs to the etcd's owner, in vnest up the super cluster's
// kube-apiserver), and upstream gives storage without compaction no compactor,
// so its watch cache would never learn that etcd dropped old revisions and
// would keep serving lists at them from its snapshots: a continue token would
// never expire, where Kubernetes answers 410 Gone with a token for an
// inconsistent continuation (the conformance test "API chunking should support
// continue listing from the last key if the original version has been
// compacted away" waits ten minutes for that and fails). Each shared client
// therefore runs upstream's compactor with no interval of its own: it does not
// compact, it reads and watches compact_rev_key, where a compacting apiserver
// records each compaction, and tells the stores' watch caches, as in an
// apiserver that compacts. With etcd auth on, the tenant's role may read that
// key (manager, grantTenantAccess).
//
// What the shared client does not have: upstream's gRPC client Prometheus
// interceptors (grpc_client_* metrics), whose collector is private to the
// factory package. The etcd request metrics (etcd_request_duration_seconds
// and friends) are recorded above gRPC and stay.
package sharedetcd
