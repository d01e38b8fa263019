// Package stopsignal is the context the vnest commands stop on: SIGINT, SIGTERM, and SIGHUP
// unless the process was started with it ignored (nohup). The default action of SIGHUP ends a
// process at once, so a closed terminal or a dropped ssh session ended `vnest up` without its
// clean stop: the kubelet and containerd died with it (their parent-death signal), while the
// containers, detached under their shims, kept running, with the node's mounts, bridge and
// iptables chains.
package stopsignal
