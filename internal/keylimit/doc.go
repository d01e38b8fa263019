// Package keylimit bounds how many things of each key (a tenant) go at once, so that one
// tenant's flood of long requests holds up only its own: the syncer's DNS forwarding and its
// kubelet proxy's streams. It only counts; what a refusal means is the caller's.
package keylimit
