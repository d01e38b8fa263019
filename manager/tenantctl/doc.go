// Package tenantctl is the logic behind the CLI's tenant commands (`vnest
// create|delete|list|kubeconfig`): it creates, deletes, lists and reads
// VirtualClusters and their kubeconfig Secrets in the super cluster, and
// turns a VirtualCluster's conditions into errors a user can act on.
//
// It talks to the super cluster's apiserver only (never to a tenant, never
// to etcd) through a controller-runtime client the caller provides, so the
// tests use a fake one. It must not reconcile anything: what happens to a
// VirtualCluster is the manager's business; this package only waits for it.
package tenantctl
