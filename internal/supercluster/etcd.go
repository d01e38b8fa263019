package supercluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/klog/v2"
)

// startEtcd runs etcd in this process, TLS with client certificates only,
// listening on loopback and the host IP (tenant control planes that run as
// pods reach it there).
func (c *config) startEtcd(ctx context.Context, cs *certs) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "vnest"
	cfg.Dir = filepath.Join(c.dataDir, "etcd")
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(c.dataDir, "logs", "etcd.log")}
	client := func(host string) url.URL {
		return url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(c.ports.EtcdClient))}
	}
	peer := url.URL{Scheme: "https", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.ports.EtcdPeer))}
	cfg.ListenClientUrls = []url.URL{client("127.0.0.1"), client(c.hostIP.String())}
	cfg.AdvertiseClientUrls = []url.URL{client("127.0.0.1")}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	tls := func(t *embed.Config) {
		t.ClientTLSInfo.CertFile, t.ClientTLSInfo.KeyFile = cs.etcdServer.CertFile, cs.etcdServer.KeyFile
		t.ClientTLSInfo.TrustedCAFile, t.ClientTLSInfo.ClientCertAuth = cs.etcdCA.CertFile, true
		t.PeerTLSInfo = t.ClientTLSInfo
	}
	tls(cfg)
	// A dev cluster: compact hourly so the data dir does not grow forever.
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = "periodic", "1h"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd (data %s): %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		klog.FromContext(ctx).V(1).Info("Etcd is ready", "dir", cfg.Dir)
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd did not become ready within 60s; see %s", cfg.LogOutputs[0])
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

func (c *config) etcdURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", c.ports.EtcdClient)
}
