package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// namespaceMadeAgainLimit is how soon after the old super namespace is gone the pod of a tenant
// namespace made again under its name must reach the super cluster. Its creates were refused
// until then and backed off for long enough (namespaceMadeAgainWait) that its retries are 41 s
// apart, then a minute (and the patrol queues every key once a minute); the syncer queues them
// at once when it creates the new super namespace.
const (
	namespaceMadeAgainLimit = 6 * time.Second
	namespaceMadeAgainWait  = 45 * time.Second
)

// checkNamespaceMadeAgain deletes a tenant namespace, holds its super namespace in Terminating
// with a hand-made ConfigMap's finalizer, makes the tenant namespace again under its name with
// a pod in it, and releases the old super namespace: the pod's super pod must follow within
// namespaceMadeAgainLimit, in the new super namespace of the new tenant namespace.
func checkNamespaceMadeAgain(t *testing.T, c *cluster, tenant kubernetes.Interface, clusterKey string) {
	t.Helper()
	ctx := t.Context()
	const ns, hold = "e2e-again", "e2e.vnest.dev/hold"
	superNS := clusterKey + "-" + ns
	if _, err := tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating tenant namespace %s: %v", ns, err)
	}
	waitFor(t, "super namespace "+superNS, time.Minute, func() (bool, error) {
		_, err := c.client.CoreV1().Namespaces().Get(ctx, superNS, metav1.GetOptions{})
		return err == nil, err
	})
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: superNS, Name: "e2e-hold", Finalizers: []string{hold}}}
	if _, err := c.client.CoreV1().ConfigMaps(superNS).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the finalized ConfigMap in %s: %v", superNS, err)
	}
	release := func() { // also a cleanup, when t.Context() has ended
		_, err := c.client.CoreV1().ConfigMaps(superNS).Patch(context.WithoutCancel(ctx), held.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("releasing %s/%s: %v", superNS, held.Name, err)
		}
	}
	t.Cleanup(release)

	if err := tenant.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting tenant namespace %s: %v", ns, err)
	}
	waitFor(t, "tenant namespace "+ns+" to go, its super namespace held in Terminating", 2*time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("tenant namespace still there (%v)", err)
		}
		sn, err := c.client.CoreV1().Namespaces().Get(ctx, superNS, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return sn.DeletionTimestamp != nil, fmt.Errorf("super namespace not terminating")
	})

	if _, err := tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating tenant namespace %s again: %v", ns, err)
	}
	waitFor(t, "the default ServiceAccount of tenant namespace "+ns, time.Minute, func() (bool, error) {
		_, err := tenant.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	pod, err := tenant.CoreV1().Pods(ns).Create(ctx, busyboxPod(ns, "web", "sleep 3600"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/web: %v", ns, err)
	}
	// Its creates are refused (the super namespace is terminating) and back off meanwhile.
	time.Sleep(namespaceMadeAgainWait)
	if _, err := c.client.CoreV1().Pods(superNS).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("super pod %s/web while the old super namespace is terminating: %v, want NotFound", superNS, err)
	}
	release()
	waitFor(t, "the old super namespace "+superNS+" to go", time.Minute, func() (bool, error) {
		sn, err := c.client.CoreV1().Namespaces().Get(ctx, superNS, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil && sn.DeletionTimestamp == nil {
			return true, nil // gone and made again between two polls
		}
		return false, fmt.Errorf("still there (%v)", err)
	})
	gone := time.Now()
	waitFor(t, fmt.Sprintf("super pod %s/web within %v of the old super namespace's end", superNS, namespaceMadeAgainLimit), namespaceMadeAgainLimit, func() (bool, error) {
		sp, err := c.client.CoreV1().Pods(superNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return sp.Annotations[annotationTenantUID] == string(pod.UID), fmt.Errorf("super pod of tenant UID %q, want %q", sp.Annotations[annotationTenantUID], pod.UID)
	})
	t.Logf("The super pod of a namespace made again came %v after the old super namespace went", time.Since(gone).Round(100*time.Millisecond))
	if err := tenant.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Errorf("deleting tenant namespace %s: %v", ns, err)
	}
}
