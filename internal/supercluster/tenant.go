package supercluster

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/serviceip"
	"github.com/vnest-dev/vnest/internal/syncerlease"
	"github.com/vnest-dev/vnest/manifests"
)

// The manager runs as a child like the other components; local tenant
// control planes get ports from a block of their own after the component
// block.
const (
	tenantPortOffset = 100
	tenantPortCount  = 100
)

func (c *config) managerArgs(cs *certs) []string {
	lo := c.ports.APIServer + tenantPortOffset
	args := []string{
		"manager",
		"--kubeconfig=" + c.kubeconfigPath("admin"),
		// The host IP, not loopback: control planes run by the cluster
		// provisioner reach etcd from pods.
		"--etcd-servers=https://" + c.hostIP.String() + ":" + strconv.Itoa(c.ports.EtcdClient),
		"--etcd-cafile=" + cs.etcdCA.CertFile,
		"--etcd-certfile=" + cs.etcdClient.CertFile,
		"--etcd-keyfile=" + cs.etcdClient.KeyFile,
		"--etcd-ca-keyfile=" + cs.etcdCA.KeyFile,
		"--state-dir=" + c.path("tenants"),
		"--host-ip=" + c.hostIP.String(),
		"--local-port-range=" + strconv.Itoa(lo) + "-" + strconv.Itoa(lo+tenantPortCount-1),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(c.ports.ManagerMetrics),
		"--health-probe-bind-address=0",
		// The syncer's Lease, as syncerArgs has it.
		"--syncer-lease-namespace=" + syncerlease.DefaultNamespace,
		"--syncer-lease-name=" + syncerlease.DefaultName,
	}
	if !c.NoSyncer {
		// Tenant Services take their cluster IPs from the syncer's allocator, which serves on
		// the kubelet proxy's listener (see syncerArgs), so that they equal the super
		// Services'; tenants then need the super cluster's Service range as theirs. Without
		// the syncer (or with one a test runs itself) tenants allocate on their own, as a
		// Service create would fail while the allocator is unreachable.
		args = append(args,
			"--service-ip-allocator=https://"+net.JoinHostPort(c.hostIP.String(), strconv.Itoa(c.ports.SyncerKubeletProxy))+serviceip.Path,
			"--tenant-service-cidr="+serviceCIDR)
	}
	return args
}

func (c *config) syncerArgs() []string {
	proxy := net.JoinHostPort(c.hostIP.String(), strconv.Itoa(c.ports.SyncerKubeletProxy))
	args := []string{
		"syncer",
		"--kubeconfig=" + c.kubeconfigPath("admin"),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(c.ports.SyncerMetrics),
		// The kubelet proxy behind tenant logs/exec/attach/port-forward, on the host IP:
		// tenant control planes reach it there both as local processes (local
		// provisioner) and from pods (cluster provisioner), like the super apiserver.
		"--kubelet-proxy-bind-address=" + proxy,
		"--kubelet-proxy-advertise-address=" + c.hostIP.String(),
		// The heartbeat Lease the manager reads (managerArgs), in the namespace run creates.
		"--lease-namespace=" + syncerlease.DefaultNamespace,
		"--lease-name=" + syncerlease.DefaultName,
	}
	if c.mode == NodesReal {
		// The tenants' cluster DNS, which pods of a real node use: at port 53 of the host IP, as
		// resolv.conf has no ports; binding it needs root, as real mode does. Simulated pods
		// resolve nothing, and several simulated clusters may run side by side.
		args = append(args, "--dns-bind-address="+net.JoinHostPort(c.hostIP.String(), "53"), "--dns-advertise-address="+c.hostIP.String())
	}
	return args
}

func newTenantClient(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// ensureNamespace creates the namespace name unless it exists.
func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// createOrUpdateCRD creates crd or, when it exists, updates it to this version.
// Another installer (kubectl apply, a test harness) may create it between the
// read and the create, and its status moves on its own (the apiextensions
// controllers set its conditions right after a create), so a write from a
// fresh read can still fail with AlreadyExists or Conflict: read again and
// retry.
func createOrUpdateCRD(ctx context.Context, cl client.Client, crd *apiextensionsv1.CustomResourceDefinition) error {
	raced := func(err error) bool { return apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) }
	err := retry.OnError(retry.DefaultRetry, raced, func() error {
		var existing apiextensionsv1.CustomResourceDefinition
		err := cl.Get(ctx, client.ObjectKeyFromObject(crd), &existing)
		if apierrors.IsNotFound(err) {
			crd.ResourceVersion = ""
			return cl.Create(ctx, crd)
		}
		if err != nil {
			return err
		}
		crd.ResourceVersion = existing.ResourceVersion
		return cl.Update(ctx, crd)
	})
	if err != nil {
		return fmt.Errorf("installing CRD %s: %w", crd.Name, err)
	}
	return nil
}

// installCRDs creates or updates vnest's CRDs and waits until they are served.
func installCRDs(ctx context.Context, cl client.Client, wait waitFunc) error {
	files, err := fs.Glob(manifests.CRDs, "crd/*.yaml")
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := manifests.CRDs.ReadFile(f)
		if err != nil {
			return err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := createOrUpdateCRD(ctx, cl, &crd); err != nil {
			return err
		}
		name := crd.Name
		if err := wait("CRD "+name+" to be established", func(ctx context.Context) (bool, error) {
			var got apiextensionsv1.CustomResourceDefinition
			if err := cl.Get(ctx, types.NamespacedName{Name: name}, &got); err != nil {
				return false, err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// ensureDemoTenant creates VirtualCluster default/name when missing, waits
// until it is Running and returns its kubeconfig.
func ensureDemoTenant(ctx context.Context, cl client.Client, name string, wait waitFunc) ([]byte, error) {
	vc := &v1alpha1.VirtualCluster{}
	vc.Name, vc.Namespace = name, corev1.NamespaceDefault
	if err := cl.Create(ctx, vc); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating VirtualCluster %s: %w", name, err)
	}
	var kubeconfig []byte
	err := wait("VirtualCluster "+name+" to be Running", func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(vc), vc); err != nil {
			return false, err
		}
		if vc.Status.Phase != v1alpha1.PhaseRunning {
			return false, fmt.Errorf("phase %q: %s", vc.Status.Phase, conditionMessages(vc))
		}
		var secret corev1.Secret
		if err := cl.Get(ctx, types.NamespacedName{Namespace: vc.Namespace, Name: vc.KubeconfigSecretName()}, &secret); err != nil {
			return false, err
		}
		kubeconfig = secret.Data["kubeconfig"]
		return len(kubeconfig) > 0, nil
	})
	return kubeconfig, err
}

func conditionMessages(vc *v1alpha1.VirtualCluster) string {
	var s string
	for _, c := range vc.Status.Conditions {
		s += fmt.Sprintf("%s=%s (%s); ", c.Type, c.Status, c.Message)
	}
	return s
}
