// Package ownership holds the label and annotation keys that mark an object
// in the super cluster as belonging to a tenant (a VirtualCluster), and the
// small pure checks built on them.
//
// The manager (which deletes a tenant's super objects) and the syncer (which
// creates them and must never touch anything it does not own) both import
// this package, so they agree on one spelling. It must stay free of clients
// and controller logic: only constants and functions on metav1.Object.
package ownership
