package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Keys of internal/ownership for objects the syncer copies up; spelled out like the others.
const (
	labelPublished = "tenancy.vnest.dev/published"
	labelMirror    = "tenancy.vnest.dev/mirror"
)

// Names of the objects this test makes in the super cluster.
const (
	e2eStorageClass  = "vnest-e2e-local"
	e2eOwnClass      = "vnest-e2e-own"
	e2ePrivateClass  = "vnest-e2e-private"
	e2ePriorityClass = "vnest-e2e-gold"
	e2eVolume        = "vnest-e2e-pv"
)

// TestSyncerStorageAndPolicy runs on SIMULATED nodes (kwok: no volume is mounted, no packet is
// filtered — what is checked is what the syncer writes, on both sides). Ports 17843… (tenant
// control planes 17943…).
//
//   - The operator publishes a StorageClass and a PriorityClass (label
//     tenancy.vnest.dev/published=true): both appear in the demo tenant as mirrors; an unlabelled
//     class does not, and a tenant's own class of a published name is left alone. Unpublishing
//     (label removed, class deleted) removes the copies.
//   - A tenant pod naming the published PriorityClass keeps it in the super cluster; one naming
//     system-node-critical, which the tenant labelled a mirror itself, gets no class there.
//   - A hand-made super PV (hostPath, the published class, no provisioner) and a tenant PVC of
//     that class: the super cluster's own PV binder binds the super claim, and the tenant claim
//     becomes Bound with spec.volumeName set and a mirror PV bound to it; deleting the claim
//     removes the mirror.
//   - Opted in (spec.sync.kinds NetworkPolicy), a tenant NetworkPolicy appears in the super
//     namespace with every namespaceSelector restricted to the tenant's super namespaces.
func TestSyncerStorageAndPolicy(t *testing.T) {
	c := startCluster(t, clusterOptions{nodes: "simulated", port: 17843})
	tenant, _ := waitForDemoTenant(t, c)
	key := demoClusterKey(t, c)
	superNS := key + "-default"
	ctx := t.Context()

	// A tenant's own class, made before the operator publishes one of that name.
	own := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: e2eOwnClass}, Provisioner: "example.com/tenant"}
	if _, err := tenant.StorageV1().StorageClasses().Create(ctx, own, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the tenant's own StorageClass: %v", err)
	}
	publishClasses(t, c)
	checkPublishedCopies(t, c, tenant)
	checkPublishedPriorityGoesDown(t, c, tenant, superNS)
	checkBoundVolumeMirrored(t, c, tenant, superNS)
	checkNetworkPolicyRestricted(t, c, tenant, key, superNS)
	checkUnpublished(t, c, tenant)
}

// publishClasses creates the super StorageClasses and PriorityClass of the test; the cluster
// is the test's own, but the names stay distinct in case of a reused data directory.
func publishClasses(t *testing.T, c *cluster) {
	t.Helper()
	ctx := t.Context()
	published := map[string]string{labelPublished: "true"}
	classes := []*storagev1.StorageClass{
		{ObjectMeta: metav1.ObjectMeta{Name: e2eStorageClass, Labels: published}, Provisioner: "kubernetes.io/no-provisioner",
			ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimRetain), VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate)},
		{ObjectMeta: metav1.ObjectMeta{Name: e2eOwnClass, Labels: published}, Provisioner: "kubernetes.io/no-provisioner"},
		{ObjectMeta: metav1.ObjectMeta{Name: e2ePrivateClass}, Provisioner: "kubernetes.io/no-provisioner"},
	}
	for _, sc := range classes {
		if _, err := c.client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating super StorageClass %s: %v", sc.Name, err)
		}
	}
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: e2ePriorityClass, Labels: published}, Value: 1000, Description: "e2e"}
	if _, err := c.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating super PriorityClass: %v", err)
	}
}

// checkPublishedCopies waits for the tenant copies of the published classes and checks that
// neither the unpublished class nor the tenant's own class was touched.
func checkPublishedCopies(t *testing.T, c *cluster, tenant kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	waitFor(t, "the published classes in the tenant", time.Minute, func() (bool, error) {
		sc, err := tenant.StorageV1().StorageClasses().Get(ctx, e2eStorageClass, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pc, err := tenant.SchedulingV1().PriorityClasses().Get(ctx, e2ePriorityClass, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if sc.Labels[labelMirror] != "true" || pc.Labels[labelMirror] != "true" {
			return false, fmt.Errorf("copies without the mirror label: %v, %v", sc.Labels, pc.Labels)
		}
		if sc.Provisioner != "kubernetes.io/no-provisioner" || pc.Value != 1000 {
			return false, fmt.Errorf("copies differ: provisioner %q, value %d", sc.Provisioner, pc.Value)
		}
		return true, nil
	})
	waitFor(t, "a MirrorNameTaken event on the tenant's own StorageClass", 30*time.Second, func() (bool, error) {
		evs, err := tenant.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + e2eOwnClass + ",reason=MirrorNameTaken"})
		if err != nil {
			return false, err
		}
		return len(evs.Items) > 0, nil
	})
	got, err := tenant.StorageV1().StorageClasses().Get(ctx, e2eOwnClass, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the tenant's own StorageClass: %v", err)
	}
	if got.Provisioner != "example.com/tenant" || got.Labels[labelMirror] != "" {
		t.Errorf("the tenant's own StorageClass was overwritten: provisioner %q, labels %v", got.Provisioner, got.Labels)
	}
	if _, err := tenant.StorageV1().StorageClasses().Get(ctx, e2ePrivateClass, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the unpublished StorageClass %s reached the tenant (err %v)", e2ePrivateClass, err)
	}
}

// checkPublishedPriorityGoesDown runs a tenant pod of the published PriorityClass: its super pod
// names the class, and the super cluster resolved it to the class's value.
func checkPublishedPriorityGoesDown(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string) {
	t.Helper()
	ctx := t.Context()
	waitFor(t, "the tenant's default service account", time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	pod := busyboxPod(metav1.NamespaceDefault, "gold", "sleep 3600")
	pod.Spec.PriorityClassName = e2ePriorityClass
	if _, err := tenant.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a tenant pod of PriorityClass %s: %v", e2ePriorityClass, err)
	}
	waitFor(t, "the super pod with the published PriorityClass", time.Minute, func() (bool, error) {
		sp, err := c.client.CoreV1().Pods(superNS).Get(ctx, "gold", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if sp.Spec.PriorityClassName != e2ePriorityClass || sp.Spec.Priority == nil || *sp.Spec.Priority != 1000 {
			return false, fmt.Errorf("super pod class %q, priority %v", sp.Spec.PriorityClassName, sp.Spec.Priority)
		}
		return true, nil
	})

	// The tenant labels its own system-node-critical as a mirror: a pod naming it still gets no
	// class in the super cluster, where it would preempt every other tenant's pods.
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:"true"}}}`, labelMirror)
	if _, err := tenant.SchedulingV1().PriorityClasses().Patch(ctx, "system-node-critical", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("labelling the tenant's system-node-critical as a mirror: %v", err)
	}
	forged := busyboxPod(metav1.NamespaceDefault, "forged", "sleep 3600")
	forged.Spec.PriorityClassName = "system-node-critical"
	if _, err := tenant.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a tenant pod of PriorityClass system-node-critical: %v", err)
	}
	waitFor(t, "the super pod of the forged mirror's class", time.Minute, func() (bool, error) {
		sp, err := c.client.CoreV1().Pods(superNS).Get(ctx, "forged", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if sp.Spec.PriorityClassName != "" || sp.Spec.Priority != nil && *sp.Spec.Priority != 0 {
			t.Errorf("super pod class %q, priority %d: the tenant's own mirror label took effect", sp.Spec.PriorityClassName, ptr.Deref(sp.Spec.Priority, 0))
		}
		return true, nil
	})
}

// checkBoundVolumeMirrored binds a tenant claim to a hand-made super volume through the super
// cluster's binder, checks the mirror, then deletes the claim and checks the mirror goes.
func checkBoundVolumeMirrored(t *testing.T, c *cluster, tenant kubernetes.Interface, superNS string) {
	t.Helper()
	ctx := t.Context()
	size := corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: e2eVolume},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      size,
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              e2eStorageClass,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: "/tmp/" + e2eVolume, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}},
		},
	}
	if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the super PV: %v", err)
	}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: size},
			StorageClassName: ptr.To(e2eStorageClass),
		},
	}
	claim, err := tenant.CoreV1().PersistentVolumeClaims(metav1.NamespaceDefault).Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the tenant PVC: %v", err)
	}
	waitFor(t, "the tenant PVC Bound to the mirror PV", time.Minute, func() (bool, error) {
		tc, err := tenant.CoreV1().PersistentVolumeClaims(metav1.NamespaceDefault).Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if tc.Status.Phase != corev1.ClaimBound || tc.Spec.VolumeName != e2eVolume {
			return false, fmt.Errorf("tenant PVC %s, volumeName %q; %s", tc.Status.Phase, tc.Spec.VolumeName, superClaimState(ctx, c, superNS))
		}
		mirror, err := tenant.CoreV1().PersistentVolumes().Get(ctx, e2eVolume, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ref := mirror.Spec.ClaimRef
		switch {
		case mirror.Labels[labelMirror] != "true":
			return false, fmt.Errorf("mirror PV labels %v", mirror.Labels)
		case mirror.Status.Phase != corev1.VolumeBound:
			return false, fmt.Errorf("mirror PV %s", mirror.Status.Phase)
		case ref == nil || ref.Namespace != metav1.NamespaceDefault || ref.Name != "data" || ref.UID != claim.UID:
			return false, fmt.Errorf("mirror PV claimRef %+v, want default/data %s", ref, claim.UID)
		case mirror.Spec.HostPath == nil || mirror.Spec.HostPath.Path != pv.Spec.HostPath.Path || mirror.Spec.StorageClassName != e2eStorageClass ||
			!mirror.Spec.Capacity.Storage().Equal(resource.MustParse("1Gi")):
			return false, fmt.Errorf("mirror PV spec %+v", mirror.Spec)
		}
		return true, nil
	})
	sp, err := c.client.CoreV1().PersistentVolumes().Get(ctx, e2eVolume, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := sp.Spec.ClaimRef; ref == nil || ref.Namespace != superNS || ref.Name != "data" {
		t.Errorf("the super PV is bound to %+v, want %s/data", ref, superNS)
	}

	if err := tenant.CoreV1().PersistentVolumeClaims(metav1.NamespaceDefault).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting the tenant PVC: %v", err)
	}
	waitFor(t, "the mirror PV to go with its claim", time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().PersistentVolumes().Get(ctx, e2eVolume, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("mirror PV still there (err %v)", err)
	})
}

// checkNetworkPolicyRestricted opts the demo tenant in to NetworkPolicies and checks a policy
// that allows "all namespaces" and names kube-system reads, in the super cluster, as "this
// tenant's namespaces" and "this tenant's kube-system".
func checkNetworkPolicyRestricted(t *testing.T, c *cluster, tenant kubernetes.Interface, key, superNS string) {
	t.Helper()
	ctx := t.Context()
	patchDemo(t, c, `{"spec":{"sync":{"kinds":["NetworkPolicy"]}}}`) // opt in to NetworkPolicies
	web := metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "web"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: web,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: &metav1.LabelSelector{}}, {PodSelector: &web}}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}}}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	if _, err := tenant.NetworkingV1().NetworkPolicies(metav1.NamespaceDefault).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the tenant NetworkPolicy: %v", err)
	}
	var got *networkingv1.NetworkPolicy
	// Well within the syncer's patrol period (a minute): opting in queues the tenant's policies
	// at once, whether the syncer sees the VirtualCluster's change before the policy or after.
	waitFor(t, "the tenant NetworkPolicy in the super namespace", 20*time.Second, func() (bool, error) {
		var err error
		got, err = c.client.NetworkingV1().NetworkPolicies(superNS).Get(ctx, "web", metav1.GetOptions{})
		return err == nil, err
	})
	if got.Labels[labelClusterKey] != key || got.Labels[labelTenantNamespace] != metav1.NamespaceDefault {
		t.Errorf("super NetworkPolicy lacks its ownership: %v", got.Labels)
	}
	if got.Spec.PodSelector.MatchLabels["app"] != "web" || len(got.Spec.Ingress) != 1 || len(got.Spec.Ingress[0].From) != 2 || len(got.Spec.Egress) != 1 {
		t.Fatalf("super NetworkPolicy spec: %+v", got.Spec)
	}
	all, same, kubeSystem := got.Spec.Ingress[0].From[0].NamespaceSelector, got.Spec.Ingress[0].From[1], got.Spec.Egress[0].To[0].NamespaceSelector
	if all == nil || all.MatchLabels[labelClusterKey] != key {
		t.Errorf("the all-namespaces peer is not restricted to the tenant: %+v", all)
	}
	if same.NamespaceSelector != nil || same.PodSelector == nil || same.PodSelector.MatchLabels["app"] != "web" {
		t.Errorf("the same-namespace peer changed: %+v", same)
	}
	if kubeSystem == nil || kubeSystem.MatchLabels[labelClusterKey] != key || kubeSystem.MatchLabels["kubernetes.io/metadata.name"] != key+"-kube-system" {
		t.Errorf("the kube-system peer does not name the tenant's kube-system: %+v", kubeSystem)
	}
	// The restriction must hold against the real super namespaces: the translated selector
	// selects the tenant's default namespace and not the super cluster's own.
	for ns, want := range map[string]bool{superNS: true, metav1.NamespaceDefault: false, "kube-system": false} {
		if sel := selects(ctx, t, c, all, ns); sel != want {
			t.Errorf("the all-namespaces peer selects super namespace %s: %v, want %v", ns, sel, want)
		}
	}
}

// selects reports whether sel selects super namespace ns.
func selects(ctx context.Context, t *testing.T, c *cluster, sel *metav1.LabelSelector, ns string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %+v: %v", sel, err)
	}
	list, err := c.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list.Items {
		if n.Name == ns {
			return true
		}
	}
	return false
}

// checkUnpublished takes the label off the published StorageClass and deletes the published
// PriorityClass: both copies must leave the tenant, and the tenant's own class must stay.
func checkUnpublished(t *testing.T, c *cluster, tenant kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	unlabel := []byte(`{"metadata":{"labels":{"` + labelPublished + `":null}}}`)
	if _, err := c.client.StorageV1().StorageClasses().Patch(ctx, e2eStorageClass, types.MergePatchType, unlabel, metav1.PatchOptions{}); err != nil {
		t.Fatalf("unpublishing StorageClass %s: %v", e2eStorageClass, err)
	}
	if err := c.client.SchedulingV1().PriorityClasses().Delete(ctx, e2ePriorityClass, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting PriorityClass %s: %v", e2ePriorityClass, err)
	}
	waitFor(t, "the unpublished copies to leave the tenant", time.Minute, func() (bool, error) {
		_, scErr := tenant.StorageV1().StorageClasses().Get(ctx, e2eStorageClass, metav1.GetOptions{})
		_, pcErr := tenant.SchedulingV1().PriorityClasses().Get(ctx, e2ePriorityClass, metav1.GetOptions{})
		if apierrors.IsNotFound(scErr) && apierrors.IsNotFound(pcErr) {
			return true, nil
		}
		return false, fmt.Errorf("StorageClass: %v, PriorityClass: %v", scErr, pcErr)
	})
	if err := c.client.StorageV1().StorageClasses().Delete(ctx, e2eOwnClass, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting super StorageClass %s: %v", e2eOwnClass, err)
	}
	time.Sleep(3 * time.Second) // a gone published class must not take the tenant's own with it
	if _, err := tenant.StorageV1().StorageClasses().Get(ctx, e2eOwnClass, metav1.GetOptions{}); err != nil {
		t.Errorf("the tenant's own StorageClass %s is gone: %v", e2eOwnClass, err)
	}
}

// superClaimState says where the super side of checkBoundVolumeMirrored stands, for a failure
// message: the super claim and PV phases and the super claim's latest event.
func superClaimState(ctx context.Context, c *cluster, superNS string) string {
	claim := "super claim: none"
	if sc, err := c.client.CoreV1().PersistentVolumeClaims(superNS).Get(ctx, "data", metav1.GetOptions{}); err == nil {
		claim = fmt.Sprintf("super claim %s, volumeName %q", sc.Status.Phase, sc.Spec.VolumeName)
	}
	volume := "super PV: none"
	if pv, err := c.client.CoreV1().PersistentVolumes().Get(ctx, e2eVolume, metav1.GetOptions{}); err == nil {
		volume = fmt.Sprintf("super PV %s", pv.Status.Phase)
	}
	event := ""
	if evs, err := c.client.CoreV1().Events(superNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=data"}); err == nil && len(evs.Items) > 0 {
		e := evs.Items[len(evs.Items)-1]
		event = fmt.Sprintf(", its last event %s: %s", e.Reason, e.Message)
	}
	return claim + ", " + volume + event
}
