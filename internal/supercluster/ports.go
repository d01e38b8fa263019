package supercluster

import (
	"fmt"
	"net"
	"strconv"
)

// portCount ports starting at --apiserver-port are used; keeping them in one
// block lets several super clusters run side by side with one flag.
const portCount = 13

type ports struct {
	APIServer, EtcdClient, EtcdPeer, ControllerManager, Scheduler int
	Kubelet, KubeletHealthz, ProxyMetrics, ProxyHealthz, Kwok     int
	SyncerMetrics, ManagerMetrics, SyncerKubeletProxy             int
}

func newPorts(base int) ports {
	return ports{
		APIServer: base, EtcdClient: base + 1, EtcdPeer: base + 2, ControllerManager: base + 3, Scheduler: base + 4,
		Kubelet: base + 5, KubeletHealthz: base + 6, ProxyMetrics: base + 7, ProxyHealthz: base + 8, Kwok: base + 9,
		SyncerMetrics: base + 10, ManagerMetrics: base + 11, SyncerKubeletProxy: base + 12,
	}
}

func (p ports) byComponent(mode string) map[string]int {
	m := map[string]int{
		"kube-apiserver": p.APIServer, "etcd client": p.EtcdClient, "etcd peer": p.EtcdPeer,
		"kube-controller-manager": p.ControllerManager, "kube-scheduler": p.Scheduler,
		"syncer metrics": p.SyncerMetrics, "manager metrics": p.ManagerMetrics, "syncer kubelet proxy": p.SyncerKubeletProxy,
	}
	if mode == NodesReal {
		m["kubelet"], m["kubelet healthz"], m["kube-proxy metrics"], m["kube-proxy healthz"] = p.Kubelet, p.KubeletHealthz, p.ProxyMetrics, p.ProxyHealthz
	} else {
		m["kwok"] = p.Kwok
	}
	return m
}

// checkFree fails fast when a port is taken, naming the component that
// needs it, instead of letting a child crash-loop later.
func (p ports) checkFree(mode string) error {
	for name, port := range p.byComponent(mode) {
		l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("port %d (%s) is already in use; stop what holds it or pick another block with --apiserver-port", port, name)
		}
		l.Close()
	}
	return nil
}
