package syncer

// Pod token Secrets against the syncer's caches: a Secret written but not yet cached, read
// live, renewed once per pod, and conflicts.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// newTokenPodSynced is newTokenHarness with tenant pod default/web mounting its token, after
// its first sync: the token Secret and the super pod written, neither in the caches.
func newTokenPodSynced(t *testing.T) (*harness, context.Context) {
	t.Helper()
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h := newTokenHarness(t, pod)
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	return h, ctx
}

// cacheWritten reads the super object of kind k (a Pod or a Secret) named name in the test's
// super namespace, as the last sync wrote it, and puts it into the syncer's cache, as its
// informer would.
func (h *harness) cacheWritten(ctx context.Context, t *testing.T, k kind, name string) object {
	t.Helper()
	var obj object
	var err error
	switch k {
	case kindPod:
		obj, err = h.super.CoreV1().Pods(testSuperNS).Get(ctx, name, metav1.GetOptions{})
	case kindSecret:
		obj, err = h.super.CoreV1().Secrets(testSuperNS).Get(ctx, name, metav1.GetOptions{})
	default:
		t.Fatalf("cacheWritten: kind %s", k)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.superIndex[k].Update(obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestTokenSecretNotYetInTheCache: the Secret is written right after the super pod, and the pod's
// informer often delivers the pod first. The sync that pod brings reads the Secret live
// instead of requesting a second token and failing on the Secret that exists.
func TestTokenSecretNotYetInTheCache(t *testing.T) {
	h, ctx := newTokenPodSynced(t)
	h.cacheWritten(ctx, t, kindPod, "web") // the pod only: its Secret's event has not come yet
	h.super.ClearActions()
	h.tenantCS.ClearActions()
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatalf("syncPod with the Secret not yet in the cache: %v", err)
	}
	if w := writes(h.tenantCS); len(w) > 0 {
		t.Errorf("tenant writes %v, want none (no second token)", w)
	}
	if w := writes(h.super); len(w) > 0 {
		t.Errorf("super writes %v, want none", w)
	}
}

// TestTokenNamesTheNode: a pod's first tokens are requested before the super cluster schedules
// it; once the tenant pod is bound, its tokens are requested again (the tenant's TokenRequest
// then names the node, as a kubelet's token does) and the Secret records the node, so the next
// sync requests none.
func TestTokenNamesTheNode(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h := newTokenHarness(t, pod)
	requests := countTokenRequests(h)
	ctx := testContext(t)
	// sync runs a round and puts what the super cluster then holds into the syncer's caches.
	sync := func() (*corev1.Secret, int) {
		t.Helper()
		before := *requests
		if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
			t.Fatal(err)
		}
		h.cacheWritten(ctx, t, kindPod, "web")
		return h.cacheWritten(ctx, t, kindSecret, "vnest-token-web").(*corev1.Secret), *requests - before
	}
	if sec, n := sync(); n != 1 || sec.Annotations[annotationTokenNode] != "" {
		t.Fatalf("new pod: %d token requests, token node %q; want 1 and none", n, sec.Annotations[annotationTokenNode])
	}
	if _, n := sync(); n != 0 {
		t.Errorf("unbound pod, token good: %d token requests, want 0", n)
	}

	// The super cluster schedules the pod and the tenant pod is bound to the same node.
	bindInCaches(ctx, t, h, pod, "node-1")
	sec, n := sync()
	if n != 1 || sec.Annotations[annotationTokenNode] != "node-1" {
		t.Errorf("bound pod: %d token requests, token node %q; want 1 and node-1", n, sec.Annotations[annotationTokenNode])
	}
	if _, n := sync(); n != 0 {
		t.Errorf("bound pod, token names its node: %d token requests, want 0", n)
	}
}

// TestTokenFailureKeepsStatus: a bound pod whose tokens cannot be requested again (its service
// account deleted, say) still gets its status from the super pod; the round reports the error.
func TestTokenFailureKeepsStatus(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	pod.Spec.NodeName = "node-1"
	h := newTokenHarness(t, pod)
	h.tenantCS.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), "default")
	})
	sp := translatePod(pod, testOwner, v1alpha1.PolicySpec{}, nil)
	sp.Status.Phase = corev1.PodRunning
	if err := h.s.superIndex[kindPod].Add(sp); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	err := h.s.syncPod(ctx, h.t, "default", "web")
	if !apierrors.IsNotFound(err) {
		t.Errorf("syncPod = %v, want the token request's NotFound", err)
	}
	tp, err := h.tenantCS.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tp.Status.Phase != corev1.PodRunning {
		t.Errorf("tenant pod phase %q, want Running (the status goes up without the token)", tp.Status.Phase)
	}
}

// TestTokenRefusedEvent: a token the tenant refuses for a reason the pod's owner can fix (its
// service account is gone) gets the tenant pod the FailedMount event a kubelet would record,
// naming the volume, for a new pod and for a bound one; a passing failure (the tenant
// apiserver timing out) is retried without an event. Either way the error is returned.
func TestTokenRefusedEvent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		nodeName  string
		err       error
		wantEvent bool
	}{
		{"new pod, service account gone", "", apierrors.NewNotFound(corev1.Resource("serviceaccounts"), "default"), true},
		{"bound pod, service account gone", "node-1", apierrors.NewNotFound(corev1.Resource("serviceaccounts"), "default"), true},
		{"new pod, tenant timed out", "", apierrors.NewServerTimeout(corev1.Resource("serviceaccounts"), "create", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := MakePod("default", "web").Obj()
			pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
			pod.Spec.NodeName = tc.nodeName
			h := newTokenHarness(t, pod)
			h.tenantCS.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tc.err
			})
			if tc.nodeName != "" {
				sp := translatePod(pod, testOwner, v1alpha1.PolicySpec{}, nil)
				sp.Spec.NodeName = tc.nodeName
				if err := h.s.superIndex[kindPod].Add(sp); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err == nil {
				t.Error("syncPod = nil, want the token request's error (retried)")
			}
			var mounts []string
			for _, e := range events(h.recorder) {
				if strings.Contains(e, reasonFailedMount) {
					mounts = append(mounts, e)
				}
			}
			switch {
			case !tc.wantEvent && len(mounts) > 0:
				t.Errorf("events %q, want no %s for a passing failure", mounts, reasonFailedMount)
			case tc.wantEvent && (len(mounts) != 1 || !strings.Contains(mounts[0], `volume "kube-api-access-abcde"`) || !strings.Contains(mounts[0], "not found")):
				t.Errorf("events %q, want one Warning %s naming the volume and the tenant's refusal", mounts, reasonFailedMount)
			}
		})
	}
}

// TestTokenSecretConflict: when the Secret update for the bound pod's tokens meets a newer
// Secret than the cache's (a conflict), the prepared tokens go over the live Secret: no error,
// no second TokenRequest.
func TestTokenSecretConflict(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h := newTokenHarness(t, pod)
	requests := countTokenRequests(h)
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	h.cacheWritten(ctx, t, kindSecret, "vnest-token-web")
	bindInCaches(ctx, t, h, pod, "node-1")
	conflicts := 0
	h.super.PrependReactor("update", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts++; conflicts == 1 {
			return true, nil, apierrors.NewConflict(corev1.Resource("secrets"), "vnest-token-web", errors.New("the object has been modified"))
		}
		return false, nil, nil
	})
	before := *requests
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatalf("bound pod, Secret update conflicts once: %v, want it written over the live Secret", err)
	}
	live, err := h.super.CoreV1().Secrets(testSuperNS).Get(ctx, "vnest-token-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if live.Annotations[annotationTokenNode] != "node-1" || *requests-before != 1 {
		t.Errorf("token node %q after %d token requests; want node-1 after 1", live.Annotations[annotationTokenNode], *requests-before)
	}
}

// countTokenRequests counts the TokenRequests the tenant serves from now on.
func countTokenRequests(h *harness) *int {
	n := new(int)
	h.tenantCS.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		*n++
		return false, nil, nil
	})
	return n
}

// bindInCaches puts the super cluster's scheduling of tenant pod p's super pod on node, and the
// tenant pod bound to it, into the syncer's caches.
func bindInCaches(ctx context.Context, t *testing.T, h *harness, p *corev1.Pod, node string) {
	t.Helper()
	sp := h.cacheWritten(ctx, t, kindPod, p.Name).(*corev1.Pod).DeepCopy()
	sp.Spec.NodeName = node
	if err := h.s.superIndex[kindPod].Update(sp); err != nil {
		t.Fatal(err)
	}
	bound := p.DeepCopy()
	bound.Spec.NodeName = node
	if err := h.t.index[kindPod].Update(bound); err != nil {
		t.Fatal(err)
	}
}

// TestTokenSecretAddWaitsForThePod: the token Secret's add event, which often comes before the
// super pod's written with it, does not sync the pod at once (the pod is not in the cache yet,
// and the sync would create it again), but after tokenSecretAddDelay, when the caches agree;
// its update and delete events sync the pod at once.
func TestTokenSecretAddWaitsForThePod(t *testing.T) {
	defer func(d time.Duration) { tokenSecretAddDelay = d }(tokenSecretAddDelay)
	tokenSecretAddDelay = 50 * time.Millisecond
	h, ctx := newTokenPodSynced(t)
	sec := h.cacheWritten(ctx, t, kindSecret, tokenSecretName("web")) // its informer is first
	secrets := h.s.superHandler(kindSecret)
	secrets.OnAdd(sec, false)
	drain := func() (synced int) {
		for h.s.queue.Len(testKey) > 0 {
			k, _ := h.s.queue.Get()
			if err := h.s.syncPod(ctx, h.t, k.Item.Namespace, k.Item.Name); err != nil {
				t.Error(err)
			}
			h.s.queue.Done(k.Tenant, k.Item)
			synced++
		}
		return synced
	}
	if n := drain(); n > 0 {
		t.Errorf("the token Secret's add event synced the pod at once (%d syncs); super writes %v", n, writes(h.super))
	}
	h.cacheWritten(ctx, t, kindPod, "web") // the pod's informer catches up
	time.Sleep(3 * tokenSecretAddDelay)
	if n := drain(); n != 1 {
		t.Errorf("%d syncs after the delay, want 1", n)
	}
	if w := writes(h.super); len(w) != 2 {
		t.Errorf("super writes %v, want the Secret's and the pod's creates only", w)
	}

	secrets.OnUpdate(sec, sec)
	if n := h.s.queue.Len(testKey); n != 1 {
		t.Errorf("%d keys queued after the token Secret's update event, want 1 at once", n)
	}
	drain()
	secrets.OnDelete(sec)
	if n := h.s.queue.Len(testKey); n != 1 {
		t.Errorf("%d keys queued after the token Secret's delete event, want 1 at once", n)
	}
}

// TestTokenSecretReadsItsOwnWrite: once the pod is bound, the sync that writes its node's
// tokens is often followed by another (the status) before the Secret's informer has the write.
// That sync reads the syncer's own write and leaves the Secret alone, instead of writing again
// from the cache's older copy (a conflict, then a second write).
func TestTokenSecretReadsItsOwnWrite(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h := newTokenHarness(t, pod)
	rv := 0 // the fake super cluster keeps no resourceVersions of its own
	h.super.PrependReactor("*", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if w, ok := a.(interface{ GetObject() runtime.Object }); ok && (a.GetVerb() == "create" || a.GetVerb() == "update") {
			rv++
			w.GetObject().(*corev1.Secret).ResourceVersion = strconv.Itoa(rv)
		}
		return false, nil, nil
	})
	requests := countTokenRequests(h)
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	h.cacheWritten(ctx, t, kindSecret, tokenSecretName("web"))
	bindInCaches(ctx, t, h, pod, "node-1")
	h.super.ClearActions()
	before := *requests
	for range 2 { // the Secret's cache stays at the pre-binding copy
		if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
			t.Fatal(err)
		}
	}
	var secretWrites []string
	for _, w := range writes(h.super) {
		if strings.Contains(w, " secrets ") {
			secretWrites = append(secretWrites, w)
		}
	}
	if len(secretWrites) != 1 || *requests-before != 1 {
		t.Errorf("two syncs of the bound pod: token Secret writes %v and %d token requests, want one of each", secretWrites, *requests-before)
	}
	live, err := h.super.CoreV1().Secrets(testSuperNS).Get(ctx, tokenSecretName("web"), metav1.GetOptions{})
	if err != nil || live.Annotations[annotationTokenNode] != "node-1" {
		t.Errorf("live token Secret names node %q (err %v), want node-1", live.Annotations[annotationTokenNode], err)
	}
}

// TestTokenSecretConflictKeepsGoodLive: a syncer whose cache is behind a write it did not make
// itself (its run before a restart) gets a conflict on the token Secret; the live Secret
// already holds tokens for the pod's node, so it is left as it is.
func TestTokenSecretConflictKeepsGoodLive(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h := newTokenHarness(t, pod)
	secretsGVR := corev1.SchemeGroupVersion.WithResource("secrets")
	rv := 0
	h.super.PrependReactor("*", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		w, ok := a.(interface{ GetObject() runtime.Object })
		if !ok || (a.GetVerb() != "create" && a.GetVerb() != "update") {
			return false, nil, nil
		}
		sec := w.GetObject().(*corev1.Secret)
		if a.GetVerb() == "update" {
			live, err := h.super.Tracker().Get(secretsGVR, sec.Namespace, sec.Name)
			if err == nil && live.(*corev1.Secret).ResourceVersion != sec.ResourceVersion {
				return true, nil, apierrors.NewConflict(secretsGVR.GroupResource(), sec.Name, errors.New("the object has been modified"))
			}
		}
		rv++
		sec.ResourceVersion = strconv.Itoa(rv)
		return false, nil, nil
	})
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	h.cacheWritten(ctx, t, kindSecret, tokenSecretName("web"))
	bindInCaches(ctx, t, h, pod, "node-1")
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil { // the run before the restart
		t.Fatal(err)
	}
	before, err := h.super.CoreV1().Secrets(testSuperNS).Get(ctx, tokenSecretName("web"), metav1.GetOptions{})
	if err != nil || before.Annotations[annotationTokenNode] != "node-1" {
		t.Fatalf("token Secret before the restart names node %q (err %v)", before.Annotations[annotationTokenNode], err)
	}
	// The restarted syncer: no writes of its own to read back, the Secret's cache still behind.
	h.s.tokenSecrets = newOwnWrites[*corev1.Secret](h.s.superIndex[kindSecret], tokenWriteTTL)
	h.super.ClearActions()
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	after, err := h.super.CoreV1().Secrets(testSuperNS).Get(ctx, tokenSecretName("web"), metav1.GetOptions{})
	if err != nil || after.ResourceVersion != before.ResourceVersion {
		t.Errorf("token Secret rewritten after the conflict: resourceVersion %s → %s (err %v); super writes %v", before.ResourceVersion, after.ResourceVersion, err, writes(h.super))
	}
}

// TestTokenRenewalWaitsOncePerPod: every sync of a pod that mounts a token queues the pod
// again for the token's renewal, and the patrol syncs every pod once a resync period. The
// pod waits once, not once per sync (before, every sync started a timer of its own, held
// until the renewal: about fifty per pod an hour).
func TestTokenRenewalWaitsOncePerPod(t *testing.T) {
	h, ctx := newTokenPodSynced(t)
	h.cacheWritten(ctx, t, kindSecret, tokenSecretName("web"))
	h.cacheWritten(ctx, t, kindPod, "web")
	for range 20 { // twenty patrols
		if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.s.queue.Waiting(); n != 1 {
		t.Errorf("after 21 syncs of one pod, %d keys wait to be queued; want 1 (its renewal)", n)
	}
}
