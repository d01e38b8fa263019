// Package manager is the vnest operator (`vnest manager`): it reconciles
// VirtualCluster objects (tenancy.vnest.dev/v1alpha1) in the super cluster
// into running tenant control planes.
//
// For each VirtualCluster it owns, in this order: a finalizer; the tenant's
// identity in the status (cluster key, etcd prefix, super-namespace prefix);
// etcd access (with etcd auth on, a user and role limited to the tenant's
// key range); the tenant PKI, kept in the Secret "<name>-pki" (a leaf
// certificate is reissued 30 days before its one-year end; a CA is kept until
// 30 days before its ten-year end, and replacing it reissues every leaf);
// the control plane itself, run by a provisioner
// (`local`: a `vnest apiserver` child process of the manager, in a cgroup of
// its own when spec.controlPlane.resources has limits; `cluster`:
// Deployment + Service in the VirtualCluster's namespace); the kubeconfig
// Secret "<name>-kubeconfig"; and the conditions, phase and events that
// explain where a tenant stands. Deleting a VirtualCluster stops the
// control plane and removes every super-cluster object of the tenant, its
// etcd keys, user and role, and its Secrets before the finalizer goes; an
// object in its namespace that merely has one of its names is never
// deleted (ownsObject).
//
// The package must not sync tenant objects (the syncer does), must not
// import k8s.io/kubernetes or package apiserver (it starts the tenant
// control plane as a separate process or pod; the file contract is package
// apiserver/layout), and keeps the rules in small pure functions
// (conditions, phase, names, builders) that are tested without a client.
package manager
