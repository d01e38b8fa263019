// Package syncerlease names the syncer's heartbeat Lease (coordination.k8s.io/v1) in the super
// cluster. The syncer renews it while it runs (syncer/lease.go); the manager reads it to tell a
// Syncing condition that no syncer keeps up any more (manager/syncerlease.go). Both take their
// defaults from here, so that they agree without flags.
//
// It holds constants only: no clients, no logic.
package syncerlease

import "time"

const (
	// DefaultNamespace is the Lease's namespace: the syncer's own in manifests/syncer, which
	// `vnest up` creates too.
	DefaultNamespace = "vnest-system"
	// DefaultName is the Lease's name.
	DefaultName = "vnest-syncer"
	// DefaultDuration is the Lease's leaseDurationSeconds: how long the syncer counts as running
	// after a renewal. It renews every quarter of it, as a kubelet renews its node's Lease.
	DefaultDuration = 40 * time.Second
)
