package apiserver

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/apiserver/vapstatus"
)

// Controllers are the kube-controller-manager controllers a tenant runs, by
// their canonical 1.36 names (cmd/kube-controller-manager/names). The list
// is explicit rather than "*,-x": a controller added upstream must be a
// decision here, not a surprise.
//
// Everything that makes the tenant's objects behave like a cluster's is in:
// workloads turn into pods, namespaces and owners are cleaned up, service
// accounts get tokens and the root CA, Services get EndpointSlices,
// quotas and disruption budgets get status.
var Controllers = []string{
	"serviceaccount-token-controller",
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"deployment-controller",
	"replicaset-controller",
	"replicationcontroller-controller", // ReplicationControllers are core API and conformance-tested
	"statefulset-controller",
	"daemonset-controller", // creates pods for the virtual nodes the syncer publishes
	"job-controller",
	"cronjob-controller",
	"ttl-after-finished-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"disruption-controller",
	"resourcequota-controller",
	"persistentvolumeclaim-protection-controller",
	// Lets a tenant's own PersistentVolumes (never bound in the tenant: the binder is the super
	// cluster's) be deleted; a mirror PV the syncer owns is Bound, so the syncer drops its finalizer.
	"persistentvolume-protection-controller",
	"ephemeral-volume-controller", // generic ephemeral volumes are PVCs the tenant must see
	// Deletes terminated pods over the threshold and, after 40 s, pods bound
	// to a Node that does not exist: the syncer must publish a pod's virtual
	// Node when it writes the pod's nodeName up.
	"pod-garbage-collector-controller",
	// Evicts pods from Nodes with a NoExecute taint they do not tolerate: the taints the tenant
	// puts on its virtual Nodes, and the super node's that its policy does not tolerate (the
	// super cluster evicts the super pods for those too; the tenant sees why its pod went).
	"taint-eviction-controller",
	"clusterrole-aggregation-controller", // admin/edit/view aggregate tenant CRD roles
	"certificatesigningrequest-signing-controller",
	"certificatesigningrequest-cleaner-controller",
	"legacy-serviceaccount-token-cleaner-controller",
	vapstatus.Name,                                // run by vnest itself: ownControllers
	"service-cidr-controller",                     // ServiceCIDR finalizers; the syncer may add CIDRs
	"volumeattributesclass-protection-controller", // VolumeAttributesClass deletion
}

// ownControllers are controllers of the list above that vnest runs itself, in the same
// process, instead of kube-controller-manager (see run.go), and why. A tenant whose
// kube-controller-manager certificate predates system:masters leaves them to
// kube-controller-manager: its controllers act as their service accounts, with rights vnest
// does not grant.
var ownControllers = map[string]string{
	vapstatus.Name: "upstream's controller; its type definitions built on the first policy, not at start (package vapstatus)",
}

// DisabledControllers are the controllers a tenant must not run, and why.
// They are not passed to kube-controller-manager (the list above is the
// whole truth); this is the record of the decision, checked by a test
// against the upstream list so a rename cannot slip by.
var DisabledControllers = map[string]string{
	"node-lifecycle-controller":                                      "nodes are the super cluster's; the syncer publishes virtual nodes and their status",
	"device-taint-eviction-controller":                               "DRA devices are the super cluster's",
	"node-ipam-controller":                                           "pod CIDRs are the super cluster's",
	"ttl-controller":                                                 "writes kubelet-only annotations on nodes the syncer owns",
	"service-lb-controller":                                          "cloud: load balancers are the super cluster's",
	"node-route-controller":                                          "cloud: routes are the super cluster's",
	"cloud-node-lifecycle-controller":                                "cloud: nodes are the super cluster's",
	"persistentvolume-binder-controller":                             "volumes are provisioned and bound in the super cluster; status is synced up",
	"persistentvolume-attach-detach-controller":                      "attachments happen in the super cluster",
	"persistentvolume-expander-controller":                           "expansion happens in the super cluster",
	"horizontal-pod-autoscaler-controller":                           "no metrics API in a tenant (no kubelets to scrape); saves its clients and informers",
	"certificatesigningrequest-approving-controller":                 "auto-approves kubelet CSRs; a tenant has no kubelets",
	"bootstrap-signer-controller":                                    "node bootstrap tokens; a tenant has no kubelets",
	"token-cleaner-controller":                                       "node bootstrap tokens; a tenant has no kubelets",
	"resourceclaim-controller":                                       "DRA claims are allocated in the super cluster",
	"resourcepoolstatusrequest-controller":                           "DRA is the super cluster's",
	"podgroup-protection-controller":                                 "gang scheduling is the super cluster's scheduler's",
	"podcertificaterequest-cleaner-controller":                       "pod certificates are issued by kubelets; a tenant has none",
	"kube-apiserver-serving-clustertrustbundle-publisher-controller": "alpha; not needed",
	"storageversion-garbage-collector-controller":                    "alpha (StorageVersionAPI); not needed",
	"storage-version-migrator-controller":                            "alpha; not needed",
	"selinux-warning-controller":                                     "off by default upstream; about node volumes",
}

// apiServerArgs are the kube-apiserver flags of a tenant.
func (c *completedConfig) apiServerArgs() []string {
	o := c.opts
	args := []string{
		"--etcd-servers=" + strings.Join(o.EtcdServers, ","),
		"--etcd-prefix=" + o.EtcdPrefix,
		"--etcd-compaction-interval=" + o.EtcdCompactionInterval.String(),
		"--bind-address=" + o.BindAddress,
		"--secure-port=" + strconv.Itoa(o.SecurePort),
		"--tls-cert-file=" + c.pki.Serving.CertFile,
		"--tls-private-key-file=" + c.pki.Serving.KeyFile,
		"--cert-dir=" + filepath.Join(c.stateDir, "apiserver"), // unused: the certificate is given
		// The tenant CA and the CSR signer's CA (clientCABundle): certificates
		// issued through CertificateSigningRequests authenticate, as upstream.
		"--client-ca-file=" + c.clientCABundleFile(),
		"--service-account-issuer=" + o.ServiceAccountIssuer,
		"--service-account-key-file=" + c.pki.ServiceAccountPub,
		"--service-account-signing-key-file=" + c.pki.ServiceAccountKey,
		// Pod tokens live as long as the pod's projected volume asks (1 h by default) and the
		// syncer renews them; no year-long "legacy" extension.
		"--service-account-extend-token-expiration=false",
		"--service-cluster-ip-range=" + c.serviceCIDR.String(),
		// No Node authorizer: no kubelet ever talks to a tenant apiserver,
		// and its graph would cost memory for nothing.
		"--authorization-mode=RBAC",
		// Pod policy is enforced where pods run (super cluster) and by
		// PodSecurity admission here; privileged as such is not refused.
		"--allow-privileged=true",
		// Aggregated API servers the tenant installs trust the front proxy.
		"--requestheader-client-ca-file=" + c.pki.FrontProxyCA.CertFile,
		"--requestheader-allowed-names=" + layout.FrontProxyClientCertSpec().CommonName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + c.pki.FrontProxyClient.CertFile,
		"--proxy-client-key-file=" + c.pki.FrontProxyClient.KeyFile,
		// "Kubelets" of a tenant are the syncer's kubelet proxy (package
		// syncer/kubeletproxy): virtual Nodes carry its address as their
		// only InternalIP, and it identifies the tenant by this certificate.
		// Its serving certificate is self-signed and not verified (no
		// --kubelet-certificate-authority), as with kubelets by default.
		"--kubelet-client-certificate=" + c.pki.KubeletClient.CertFile,
		"--kubelet-client-key=" + c.pki.KubeletClient.KeyFile,
		"--kubelet-preferred-address-types=InternalIP",
		// A tenant's Nodes are the syncer's mirrors of super nodes, with the super node's
		// taints; nothing in the tenant would remove a not-ready taint added at their creation
		// (no node lifecycle controller, no scheduler), so the syncer had to take it off again.
		"--disable-admission-plugins=TaintNodesByCondition",
		"--profiling=false",
	}
	if c.advertiseIP != nil {
		args = append(args, "--advertise-address="+c.advertiseIP.String())
	}
	if o.EtcdCAFile != "" {
		args = append(args, "--etcd-cafile="+o.EtcdCAFile)
	}
	if o.EtcdCertFile != "" {
		args = append(args, "--etcd-certfile="+o.EtcdCertFile, "--etcd-keyfile="+o.EtcdKeyFile)
	}
	// No footprint flags: watch cache off, priority and fairness off, object
	// count polling off and fewer admission plugins each changed the idle
	// RSS by less than the noise between runs (see doc.go) and cost
	// behaviour, so the upstream defaults stay.
	return append(args, o.ExtraAPIServerArgs...)
}

// controllerManagerArgs are the kube-controller-manager flags of a tenant.
func (c *completedConfig) controllerManagerArgs() []string {
	args := []string{
		"--kubeconfig=" + filepath.Join(c.stateDir, layout.ControllerManagerKubeconfigFile),
		// No serving port: nothing scrapes it, and it would need its own
		// authn/authz round trips to the apiserver.
		"--secure-port=0",
		"--controllers=" + strings.Join(c.kcmControllers(), ","),
		"--leader-elect=false",
		// All controllers act as system:kube-controller-manager (see
		// layout.ControllerManagerCertSpec), not each as its own service
		// account as in kubeadm: the ~25 service accounts and token requests
		// that needs at start-up delayed a tenant's readiness by 1-3 s. A
		// certificate from before that change (PKI files are never
		// reissued here; a renewal keeps the subject) lacks the group, so
		// its controllers keep their service accounts.
		"--use-service-account-credentials=" + strconv.FormatBool(!inSystemMasters(c.pki.ControllerManager.CertFile)),
		"--service-account-private-key-file=" + c.pki.ServiceAccountKey,
		"--root-ca-file=" + c.pki.CA.CertFile,
		// Not the tenant CA: a CSR names its own subject, and a certificate
		// of the tenant CA for vnest:kubelet-client would pass the syncer's
		// kubelet proxy's CA and CN checks (it also pins the certificate
		// the manager issued; layout.CSRSignerCAName).
		"--cluster-signing-cert-file=" + c.pki.CSRSignerCA.CertFile,
		"--cluster-signing-key-file=" + c.pki.CSRSignerCA.KeyFile,
		"--profiling=false",
	}
	return append(args, c.opts.ExtraControllerManagerArgs...)
}

// clientCABundleFile is the apiserver's --client-ca-file, which Run writes
// (writeClientCABundle) before the apiserver starts.
func (c *completedConfig) clientCABundleFile() string {
	return filepath.Join(c.stateDir, layout.ClientCABundleFile)
}

// writeClientCABundle writes the tenant CA and the CSR signer's CA into
// clientCABundleFile. It lives in the state directory, as the PKI directory
// may be read-only, and is written anew at every start so that it follows
// the PKI files.
func (c *completedConfig) writeClientCABundle() error {
	var bundle []byte
	for _, f := range []string{c.pki.CA.CertFile, c.pki.CSRSignerCA.CertFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("client CA bundle: %w", err)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		bundle = append(bundle, data...)
	}
	if err := os.WriteFile(c.clientCABundleFile(), bundle, 0o644); err != nil {
		return fmt.Errorf("client CA bundle: %w", err)
	}
	return nil
}

// runsOwnControllers reports whether vnest runs ownControllers itself: when the
// kube-controller-manager certificate, which they use too, is in system:masters.
func (c *completedConfig) runsOwnControllers() bool {
	return inSystemMasters(c.pki.ControllerManager.CertFile)
}

// kcmControllers are the controllers kube-controller-manager runs: Controllers, but for the
// ones vnest runs itself.
func (c *completedConfig) kcmControllers() []string {
	if !c.runsOwnControllers() {
		return Controllers
	}
	return slices.DeleteFunc(slices.Clone(Controllers), func(name string) bool {
		_, own := ownControllers[name]
		return own
	})
}

// inSystemMasters reports whether the PEM certificate in file names the
// group system:masters; false when it cannot be read.
func inSystemMasters(file string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	return err == nil && slices.Contains(cert.Subject.Organization, "system:masters")
}
