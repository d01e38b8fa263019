// Package apiservercmd is the `apiserver` command (a tenant control plane,
// package apiserver) as both binaries offer it: `vnest apiserver` and
// `vnest-apiserver apiserver`, the same flags and behaviour. It also holds the
// klog verbosity flags the vnest commands share.
package apiservercmd
