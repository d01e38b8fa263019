package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// TestSyncerSlicesAndRuntimeClasses runs on SIMULATED nodes (kwok: nothing is routed or run,
// what is checked is what the syncer writes on both sides). Ports 19603… (tenants 19703…).
//
//   - A selector-less tenant Service with a hand-made EndpointSlice: the slice appears in the
//     super namespace with the same name, Service label and addresses, follows an update and
//     goes with the tenant slice. The tenant's endpointslice controller's slices of a Service
//     with a selector do not go down.
//   - A tenant RuntimeClass with overhead and a pod naming it: the super cluster gets the class
//     as <clusterKey>-<name> with the same handler and overhead, the super pod names it and is
//     scheduled, so the tenant pod is bound. Deleting the tenant class deletes the super class.
//   - Service allocations are kept (checkServiceIPsKept): a super Service deleted by hand comes
//     back with the tenant's ClusterIP, and a tenant Service changed to NodePort gets the same
//     node port in the super cluster.
//   - A tenant namespace deleted and made again under its name while its old super namespace is
//     still terminating (checkNamespaceMadeAgain): the new namespace's pod reaches the super
//     cluster within seconds of the old super namespace's end, not after its backed-off retry.
func TestSyncerSlicesAndRuntimeClasses(t *testing.T) {
	c := startCluster(t, clusterOptions{nodes: "simulated", port: 19603})
	tenant, _ := waitForDemoTenant(t, c)
	key := demoClusterKey(t, c)
	superNS := key + "-default"
	checkHandMadeSlices(t, c, tenant, superNS)
	checkRuntimeClass(t, c, tenant, key, superNS)
	checkServiceIPsKept(t, c, tenant, superNS)
	checkNamespaceMadeAgain(t, c, tenant, key)
}

func checkHandMadeSlices(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string) {
	t.Helper()
	ctx := t.Context()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "e2e-custom"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "port80", Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if _, err := tenant.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the selector-less Service: %v", err)
	}
	withSelector := clusterIPService(metav1.NamespaceDefault, "e2e-selected", "e2e-selected", 80, 8080)
	if _, err := tenant.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, withSelector, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the Service with a selector: %v", err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-custom-slice", Labels: map[string]string{
			discoveryv1.LabelServiceName: "e2e-custom", discoveryv1.LabelManagedBy: "e2e-test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("port80"), Port: ptr.To[int32](8090), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := tenant.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the hand-made EndpointSlice: %v", err)
	}
	superSlice := func(addr string) func() (bool, error) {
		return func() (bool, error) {
			s, err := c.client.DiscoveryV1().EndpointSlices(superNS).Get(ctx, slice.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if s.Labels[discoveryv1.LabelServiceName] != "e2e-custom" || len(s.Endpoints) != 1 || len(s.Ports) != 1 {
				return false, fmt.Errorf("super slice differs: labels %v, %d endpoints, %d ports", s.Labels, len(s.Endpoints), len(s.Ports))
			}
			return s.Endpoints[0].Addresses[0] == addr, nil
		}
	}
	waitFor(t, "the hand-made EndpointSlice in the super namespace", time.Minute, superSlice("10.244.0.7"))

	live, err := tenant.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Get(ctx, slice.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live.Endpoints[0].Addresses = []string{"10.244.0.9"}
	if _, err := tenant.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Update(ctx, live, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the hand-made EndpointSlice: %v", err)
	}
	waitFor(t, "the updated address in the super slice", time.Minute, superSlice("10.244.0.9"))

	// The tenant controller's slice of the Service with a selector stays in the tenant.
	var tenantControllerSlice string
	waitFor(t, "the tenant endpointslice controller's slice", time.Minute, func() (bool, error) {
		list, err := tenant.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=e2e-selected"})
		if err != nil || len(list.Items) == 0 {
			return false, err
		}
		tenantControllerSlice = list.Items[0].Name
		return true, nil
	})
	if err := tenant.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Delete(ctx, slice.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the super slice to go with the tenant slice", time.Minute, func() (bool, error) {
		_, err := c.client.DiscoveryV1().EndpointSlices(superNS).Get(ctx, slice.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), ignoreNotFound(err)
	})
	if _, err := c.client.DiscoveryV1().EndpointSlices(superNS).Get(ctx, tenantControllerSlice, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the tenant controller's slice %s reached the super cluster (err %v)", tenantControllerSlice, err)
	}
}

func checkRuntimeClass(t *testing.T, c *cluster, tenant kubernetes.Interface, key, superNS string) {
	t.Helper()
	ctx := t.Context()
	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("1Mi")}
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-handler"}, Handler: "test-handler",
		Overhead: &nodev1.Overhead{PodFixed: overhead}}
	if _, err := tenant.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the tenant RuntimeClass: %v", err)
	}
	waitFor(t, "the tenant's default service account", time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, ignoreNotFound(err)
	})
	pod := busyboxPod(metav1.NamespaceDefault, "e2e-runtimeclass", "sleep 3600")
	pod.Spec.RuntimeClassName = ptr.To(rc.Name)
	if _, err := tenant.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the pod: %v", err)
	}
	superName := key + "-" + rc.Name
	waitFor(t, "the tenant pod bound to a node", 2*time.Minute, func() (bool, error) {
		p, err := tenant.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Spec.NodeName != "", nil
	})
	src, err := c.client.NodeV1().RuntimeClasses().Get(ctx, superName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the super RuntimeClass: %v", err)
	}
	if src.Handler != "test-handler" || src.Overhead == nil || !src.Overhead.PodFixed.Cpu().Equal(resource.MustParse("10m")) {
		t.Errorf("super RuntimeClass differs: handler %q, overhead %v", src.Handler, src.Overhead)
	}
	sp, err := c.client.CoreV1().Pods(superNS).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(sp.Spec.RuntimeClassName, ""); got != superName || !sp.Spec.Overhead.Cpu().Equal(resource.MustParse("10m")) {
		t.Errorf("super pod: runtimeClassName %q, overhead %v; want %q and the class's overhead", got, sp.Spec.Overhead, superName)
	}
	if err := tenant.CoreV1().Pods(metav1.NamespaceDefault).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if err := tenant.NodeV1().RuntimeClasses().Delete(ctx, rc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the super RuntimeClass to go with the tenant class", time.Minute, func() (bool, error) {
		_, err := c.client.NodeV1().RuntimeClasses().Get(ctx, superName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), ignoreNotFound(err)
	})
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
