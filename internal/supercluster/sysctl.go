package supercluster

import (
	"context"
	"os"
	"strconv"
	"strings"

	"k8s.io/klog/v2"
)

// inotifyInstancesPath is the per-user limit of inotify instances. Every kubelet, kube-proxy
// and tenant control plane (its certificate reloaders) holds several, all as root here; the
// kernel default of 128 runs out with a real node and a handful of tenants ("too many open
// files" from kube-proxy or the kubelet). kind asks its users to raise it for the same reason.
const inotifyInstancesPath = "/proc/sys/fs/inotify/max_user_instances"

// minInotifyInstances is what a real node raises the limit to when it is lower.
const minInotifyInstances = 8192

// raiseInotifyInstances raises the host's inotify instance limit to minInotifyInstances if it
// is lower; it only logs when it cannot (the node may still work with few tenants).
func raiseInotifyInstances(ctx context.Context) {
	logger := klog.FromContext(ctx)
	data, err := os.ReadFile(inotifyInstancesPath)
	if err != nil {
		logger.Info("Cannot read the inotify instance limit", "err", err)
		return
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || cur >= minInotifyInstances {
		return
	}
	if err := os.WriteFile(inotifyInstancesPath, []byte(strconv.Itoa(minInotifyInstances)), 0o644); err != nil {
		logger.Info("Cannot raise the inotify instance limit; many tenants may hit it", "limit", cur, "err", err)
		return
	}
	logger.Info("Raised the host's inotify instance limit", "from", cur, "to", minInotifyInstances)
}
