// Package syncer is vnest's syncer: one process that serves every tenant (VirtualCluster) of a
// super cluster. It watches VirtualClusters, connects to each Running tenant's apiserver, copies
// the tenant's objects down into the tenant's super namespaces and writes status back up.
//
// Shape: informers on the super cluster, shared by all tenants and filtered to objects that
// carry an ownership label (super events carry none: a cache of its own keeps only those of
// namespaces named like super namespaces, superEventCache in event.go); informers per tenant;
// one fair queue (package fairqueue) whose keys are (tenant, kind, tenant namespace, name);
// level-triggered, idempotent reconcilers, one kind per file, each a read → pure translate →
// apply; a periodic patrol that re-queues drift and orphans. Reads of what the syncer itself has just written (a tenant pod's binding and status,
// a pod's token Secret) see its write before the informer brings it (podwrites.go, podtoken.go):
// a sync that comes first would otherwise write again from the older copy. A pod also goes
// down through the super cluster's resize and ephemeralcontainers subresources (podresize.go,
// podephemeral.go), and the observed generations that come up are the tenant pod's
// (podgeneration.go). With --dns-bind-address it is also the tenants' cluster DNS (dns.go,
// package dns), which tells tenants apart by the source IP of a query, a super pod's IP.
//
// What it must not do: write any super object whose ownership labels do not name the tenant and
// tenant namespace it is working for (see guard in down.go; the one cluster-scoped kind it
// writes, RuntimeClass, gets a per-tenant name and an empty tenant-namespace label), touch the
// EndpointSlices of the super cluster's own endpointslice controllers (they copy the ownership
// labels; endpointslice.go), write anything of one tenant with another tenant's credentials, or
// let tenant metadata under vnest's reserved prefix reach the super cluster (package mapping
// strips it). In tenants, it updates or deletes a
// PersistentVolume, StorageClass or PriorityClass only if it made it (label mirror, see
// mirror.go). It does not provision control planes or clean up a deleted VirtualCluster's super
// objects: that is the manager's.
package syncer
