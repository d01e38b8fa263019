package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
)

// pkiHash identifies a tenant's PKI files. The control plane reads them once, at start: a
// renewed certificate (pki.go renews each 30 days before it expires) or a new PKI takes effect
// only in a control plane started with it, so a provisioner restarts one whose PKI changed.
func pkiHash(pki map[string][]byte) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(pki)) {
		fmt.Fprintf(h, "%s %d\n", name, len(pki[name]))
		h.Write(pki[name])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// endpoint is where a provisioner's control plane is reached.
type endpoint struct {
	// URL is what users and the manager use: status.endpoint and the
	// server of the kubeconfig Secret. It is reachable from the manager's
	// host.
	URL string
	// InClusterURL is for clients inside the super cluster; "" when URL
	// serves them as well.
	InClusterURL string
	// Names are the addresses the serving certificate must cover besides
	// the ones every tenant has (localhost, 127.0.0.1, kubernetes.default…).
	Names layout.ServingNames
}

// tenant is everything a provisioner needs to run a control plane.
type tenant struct {
	VC *v1alpha1.VirtualCluster
	// EtcdServers are the tenant's etcd endpoints as the manager reaches them.
	EtcdServers []string
	// PKISecret names the Secret whose Data is PKI.
	PKISecret string
	// PKI is the PKI Secret's data: every file of layout.PKIFilesIn and
	// the tenant's etcd client credentials (EtcdCAFile, EtcdClientCertFile,
	// EtcdClientKeyFile; absent for an etcd without TLS).
	PKI      map[string][]byte
	Endpoint endpoint
	// ExtraArgs are more `vnest apiserver` flags, from the manager's flags.
	ExtraArgs []string
}

// provisioner runs tenant control planes somewhere. Calls for one
// VirtualCluster never overlap (the controller serialises them per object).
type provisioner interface {
	// Endpoint returns where vc's control plane is (or will be) reached,
	// reserving what that takes (a port, a Service). It is called before
	// the PKI exists, so the serving certificate can cover the answer.
	Endpoint(ctx context.Context, vc *v1alpha1.VirtualCluster) (endpoint, error)
	// Ensure makes the control plane of t run with t's PKI and storage. It
	// returns without waiting for readiness (the caller checks /readyz);
	// starting reports a control plane that was (re)started recently, so
	// not answering yet is expected.
	Ensure(ctx context.Context, t tenant) (starting bool, err error)
	// Teardown stops vc's control plane and removes what Endpoint and
	// Ensure created. done is false while something is still going away;
	// the caller calls again later.
	Teardown(ctx context.Context, vc *v1alpha1.VirtualCluster) (done bool, err error)
}

// diagnoser is implemented by provisioners that can say more about a
// control plane that does not answer /readyz (a crashed process, a pod
// stuck pulling its image). The answer goes into the condition message.
type diagnoser interface {
	Diagnose(ctx context.Context, vc *v1alpha1.VirtualCluster) string
}

// apiserverArgs are the `vnest apiserver` flags shared by every
// provisioner; pkiDir holds the PKI Secret's files.
func apiserverArgs(t tenant, etcdServers []string, stateDir, pkiDir, bindAddress string, port int, kubeconfigServer string) []string {
	args := []string{
		"apiserver",
		"--state-dir=" + stateDir,
		"--pki-dir=" + pkiDir,
		"--etcd-servers=" + strings.Join(etcdServers, ","),
		"--etcd-prefix=" + t.VC.Status.EtcdPrefix,
		"--bind-address=" + bindAddress,
		"--secure-port=" + strconv.Itoa(port),
		"--cluster-domain=" + clusterDomain(t.VC),
		"--kubeconfig-server=" + kubeconfigServer,
	}
	if len(t.PKI[EtcdCAFile]) > 0 {
		args = append(args, "--etcd-cafile="+pkiDir+"/"+EtcdCAFile)
	}
	if len(t.PKI[EtcdClientCertFile]) > 0 {
		args = append(args, "--etcd-certfile="+pkiDir+"/"+EtcdClientCertFile, "--etcd-keyfile="+pkiDir+"/"+EtcdClientKeyFile)
	}
	return append(args, t.ExtraArgs...)
}
