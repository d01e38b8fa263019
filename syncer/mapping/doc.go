// Package mapping holds the pure rules that turn tenant coordinates into super-cluster
// coordinates and back: the super namespace of a tenant namespace, the ownership labels and
// annotations stamped on every super object, and the stripping of vnest's reserved prefix from
// tenant-supplied metadata.
//
// It must stay pure: no clients, no informers, no logging. The reverse direction (super object →
// tenant namespace) reads the ownership labels and annotations, never the namespace name, because
// names are hash-truncated and a look-alike name proves nothing.
package mapping
