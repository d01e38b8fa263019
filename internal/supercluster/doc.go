// Package supercluster runs the local super cluster behind `vnest up`: an
// embedded etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
// and either one real node (kubelet + containerd + runc + CNI bridge +
// kube-proxy) or simulated nodes (kwok), all on this machine.
//
// The upstream components run as child processes of the vnest binary itself
// (`vnest kube-apiserver`, `vnest kubelet`, …) so that their global state
// (flags, feature gates, metrics registries) stays separate and each one can
// be stopped on its own. etcd runs in-process.
//
// The package owns the data directory layout, the PKI of the super cluster,
// the component configuration and a clean shutdown: after Run returns, no
// child process, mount, pod network or kube-proxy chain of the cluster is
// left behind. It must not know about tenants; vnest's own controllers run on
// top of it like on any other cluster.
package supercluster
