package syncer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/vnest-dev/vnest/api/v1alpha1"
)

// TestNewTenantObjectsGoFirst: a tenant pod created while the tenant has updates queued (another
// pod's status, a super pod's change) is synced first, and so is the Secret it uses; the
// updates keep their order behind them.
func TestNewTenantObjectsGoFirst(t *testing.T) {
	h := newHarness(t, nil, nil)
	pods := h.t.handler(h.s, kindPod)
	old := MakePod("default", "old").Obj()
	pods.OnUpdate(old, old)
	h.s.superHandler(kindPod).OnUpdate(nil, MakePod(testSuperNS, "older").Owned("uid-older").Obj())
	created := MakePod("default", "new").Obj()
	created.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}}}
	pods.OnAdd(created, false)

	var got []string
	for h.s.queue.Len(testKey) > 0 {
		k, _ := h.s.queue.Get()
		got = append(got, string(k.Item.Kind)+" "+k.Item.Name)
		h.s.queue.Done(k.Tenant, k.Item)
	}
	want := []string{"Pod new", "Secret creds", "Pod old", "Pod older"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order of syncs (-want +got):\n%s", diff)
	}
}

// TestDeletionsGoFirst: the start of a tenant pod's deletion and a tenant object gone go before
// the tenant's queued updates; a deleting pod's further updates do not.
func TestDeletionsGoFirst(t *testing.T) {
	h := newHarness(t, nil, nil)
	pods := h.t.handler(h.s, kindPod)
	changed := MakePod("default", "changed").Obj()
	pods.OnUpdate(changed, changed)
	deleting := MakePod("default", "deleting").Obj()
	deleted := deleting.DeepCopy()
	deleted.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	pods.OnUpdate(deleting, deleted)
	pods.OnUpdate(deleted, deleted) // still deleting: a plain update
	pods.OnDelete(cache.DeletedFinalStateUnknown{Key: "default/gone", Obj: MakePod("default", "gone").Obj()})
	pods.OnUpdate(MakePod("default", "later").Obj(), MakePod("default", "later").Obj())

	var got []string
	for h.s.queue.Len(testKey) > 0 {
		k, _ := h.s.queue.Get()
		got = append(got, k.Item.Name)
		h.s.queue.Done(k.Tenant, k.Item)
	}
	// "deleting" was queued urgent first; its second update finds it queued already.
	want := []string{"deleting", "gone", "changed", "later"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order of syncs (-want +got):\n%s", diff)
	}
}

func TestChangedKinds(t *testing.T) {
	quota := v1alpha1.PolicySpec{Quota: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}}
	cases := map[string]struct {
		was, now settings
		want     []kind
	}{
		"nothing changed": {was: settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindIngress}, policy: quota}, now: settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindIngress}, policy: quota}},
		"opted in": {now: settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindNetworkPolicy}},
			want: []kind{kindNetworkPolicy}},
		"opted out of one, in to another": {was: settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindIngress, v1alpha1.SyncKindPodDisruptionBudget}}, now: settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindPodDisruptionBudget, v1alpha1.SyncKindNetworkPolicy}},
			want: []kind{kindIngress, kindNetworkPolicy}},
		"same kinds, another order":  {was: settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindIngress, v1alpha1.SyncKindNetworkPolicy}}, now: settings{kinds: []v1alpha1.SyncKind{v1alpha1.SyncKindNetworkPolicy, v1alpha1.SyncKindIngress}}},
		"all Secrets and ConfigMaps": {now: settings{syncAll: true}, want: []kind{kindConfigMap, kindSecret}},
		"quota raised": {was: settings{policy: quota}, now: settings{policy: v1alpha1.PolicySpec{Quota: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("20")}}},
			want: []kind{kindNamespace, kindPod, kindNode}},
		"same quota, another form": {was: settings{policy: quota}, now: settings{policy: v1alpha1.PolicySpec{Quota: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1e1")}}}},
		"tolerations": {now: settings{policy: v1alpha1.PolicySpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}}},
			want: []kind{kindNamespace, kindPod, kindNode}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, changedKinds(&tc.was, &tc.now)); diff != "" {
				t.Errorf("changedKinds (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSettingsChangeRequeues: when a served tenant's VirtualCluster opts in to a kind, its
// objects of that kind are queued at once, not at the next patrol; an update that changes
// nothing the sync depends on queues nothing.
func TestSettingsChangeRequeues(t *testing.T) {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"}}
	h := newHarness(t, nil, []object{np, MakePod("default", "app").Obj()})
	ctx := testContext(t)
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "demo"}}
	vc.Status.Phase, vc.Status.ClusterKey = v1alpha1.PhaseRunning, testKey
	servedAs(t, h, vc)
	h.s.vcLister = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	setVC := func(kinds ...v1alpha1.SyncKind) {
		vc.Spec.Sync = &v1alpha1.SyncSpec{Kinds: kinds}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vc)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.s.vcLister.Add(&unstructured.Unstructured{Object: obj}); err != nil {
			t.Fatal(err)
		}
	}
	queued := func() []string {
		var got []string
		for h.s.queue.Len(testKey) > 0 {
			k, _ := h.s.queue.Get()
			got = append(got, string(k.Item.Kind)+" "+k.Item.Namespace+"/"+k.Item.Name)
			h.s.queue.Done(k.Tenant, k.Item)
		}
		return got
	}

	setVC(v1alpha1.SyncKindNetworkPolicy)
	if err := h.s.syncVirtualCluster(ctx, "default/demo"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"NetworkPolicy default/web"}, queued()); diff != "" {
		t.Errorf("queued after opting in (-want +got):\n%s", diff)
	}
	if !h.t.settings.Load().optedIn(v1alpha1.SyncKindNetworkPolicy) {
		t.Error("the tenant's settings do not have the opt-in")
	}
	if err := h.s.syncVirtualCluster(ctx, "default/demo"); err != nil {
		t.Fatal(err)
	}
	if got := queued(); len(got) != 0 {
		t.Errorf("queued after an update that changed nothing: %v", got)
	}
}

// TestStoppedTenantLeavesNoRetries: a key whose tenant stopped while it synced is not retried
// and leaves no back-off and no metrics behind.
func TestStoppedTenantLeavesNoRetries(t *testing.T) {
	h := newHarness(t, nil, []object{MakePod("default", "web").Obj()})
	ctx := testContext(t)
	h.super.PrependReactor("create", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		h.s.mu.Lock()
		delete(h.s.tenants, testKey) // as stopTenant does, with the request in flight
		h.s.mu.Unlock()
		h.s.queue.RemoveTenant(testKey)
		h.s.metrics.forgetTenant(testKey)
		return true, nil, errors.New("connection reset")
	})
	web := objKey{Kind: kindPod, Namespace: "default", Name: "web"}
	h.s.process(ctx, testKey, web)
	if n := h.s.queue.Waiting(); n != 0 {
		t.Errorf("%d keys wait for a retry of the stopped tenant, want 0", n)
	}
	if n := h.s.queue.NumRequeues(testKey, web); n != 0 {
		t.Errorf("the stopped tenant's key has back-off %d, want 0", n)
	}
	if n := testutil.CollectAndCount(h.s.metrics.latency) + testutil.CollectAndCount(h.s.metrics.errors); n != 0 {
		t.Errorf("%d sync metrics series of the stopped tenant, want 0", n)
	}
}

// TestPatrolRacingStopLeavesNothing: a patrol that listed the tenants before one stopped goes
// on with it; nothing it queues or records for the stopped tenant stays.
func TestPatrolRacingStopLeavesNothing(t *testing.T) {
	h := newHarness(t, nil, []object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns"}}, MakePod("default", "web").Obj()})
	ctx := testContext(t)
	h.t.stop = func() {}
	h.s.vcs["default/demo"] = h.t

	snapshot := h.s.servingTenants() // patrolAll's list
	h.s.stopTenant(ctx, "default/demo")
	for _, tn := range snapshot {
		h.s.patrol(ctx, tn)
	}
	if n := h.s.queue.Len(testKey); n != 0 {
		t.Errorf("%d keys queued for the stopped tenant, want 0", n)
	}
	if got := h.s.queue.Tenants(); len(got) != 0 {
		t.Errorf("the queue holds state for %v, want none", got)
	}
	if n := testutil.CollectAndCount(h.s.metrics.drift) + testutil.CollectAndCount(h.s.metrics.driftT); n != 0 {
		t.Errorf("%d patrol drift series of the stopped tenant, want 0", n)
	}
}

// TestStopCancelsSyncInFlight: a sync whose request hangs ends when the syncer stops serving its
// tenant, instead of going on against the old client and the stopped tenant's frozen caches.
func TestStopCancelsSyncInFlight(t *testing.T) {
	h := newHarness(t, nil, []object{MakePod("default", "web").Obj()})
	ctx := testContext(t)
	arrived := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(hang.Close)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: hang.URL})
	if err != nil {
		t.Fatal(err)
	}
	h.s.super, h.t.client = client, client
	life, cancel := context.WithCancel(context.Background())
	h.t.life, h.t.stop = life, cancel
	h.s.vcs["default/demo"] = h.t

	done := make(chan struct{})
	go func() {
		h.s.process(ctx, testKey, objKey{Kind: kindPod, Namespace: "default", Name: "web"})
		close(done)
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the sync sent no request")
	}
	h.s.stopTenant(ctx, "default/demo")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the sync of a stopped tenant still waits on its request 10s after the stop")
	}
}

// TestVirtualClustersSyncedAgain: every VirtualCluster is queued again each vcResync although
// it does not change, so that its kubeconfig and PKI Secrets are read again (a renewed kubelet
// client certificate, which the manager writes without touching the VirtualCluster).
func TestVirtualClustersSyncedAgain(t *testing.T) {
	s := newSyncer(fake.NewClientset(), newMetrics(nil))
	vc := &unstructured.Unstructured{}
	vc.SetAPIVersion(v1alpha1.GroupVersion.String())
	vc.SetKind("VirtualCluster")
	vc.SetNamespace("default")
	vc.SetName("demo")
	s.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{virtualClusterGVR: "VirtualClusterList"}, vc)
	s.vcResync = 50 * time.Millisecond
	ctx := testContext(t)
	inf := s.newVirtualClusterInformer()
	go inf.Run(ctx.Done())
	queued := 0
	deadline := time.Now().Add(10 * time.Second)
	for queued < 3 && time.Now().Before(deadline) {
		if s.vcQueue.Len() == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		key, _ := s.vcQueue.Get()
		if key != "default/demo" {
			t.Fatalf("queued %q, want default/demo", key)
		}
		s.vcQueue.Done(key)
		queued++
	}
	if queued < 3 {
		t.Errorf("the unchanged VirtualCluster was queued %d times in 10s with a resync of 50ms, want it again and again", queued)
	}
}

// TestSyncingCondition: the Syncing condition the syncer records, from what it does with a
// VirtualCluster and what the condition says already.
func TestSyncingCondition(t *testing.T) {
	vcWith := func(phase v1alpha1.VirtualClusterPhase, status metav1.ConditionStatus, reason, message string) *v1alpha1.VirtualCluster {
		vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "demo", Generation: 3}}
		vc.Status.Phase, vc.Status.ClusterKey = phase, testKey
		if status != "" {
			vc.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionSyncing, Status: status, Reason: reason, Message: message}}
		}
		return vc
	}
	deleting := vcWith(v1alpha1.PhaseRunning, metav1.ConditionTrue, v1alpha1.ReasonReady, "the syncer serves this virtual cluster")
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	const servesMsg = "the syncer serves this virtual cluster"
	for name, tc := range map[string]struct {
		vc      *v1alpha1.VirtualCluster
		serving bool
		err     error
		want    string // "" for no change, else "status reason: message"
	}{
		"served: True": {vc: vcWith(v1alpha1.PhaseRunning, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, "no syncer has picked this virtual cluster up yet"),
			serving: true, want: "True Ready: " + servesMsg},
		"served again after the manager found the syncer's lease expired: True": {vc: vcWith(v1alpha1.PhaseRunning, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing,
			"the syncer's lease vnest-system/vnest-syncer was last renewed at 2026-12-08T09:59:09Z, 51s ago: the syncer may have stopped"),
			serving: true, want: "True Ready: " + servesMsg},
		"served and saying so: no change": {vc: vcWith(v1alpha1.PhaseRunning, metav1.ConditionTrue, v1alpha1.ReasonReady, servesMsg), serving: true},
		"no longer Running: False": {vc: vcWith(v1alpha1.PhaseFailed, metav1.ConditionTrue, v1alpha1.ReasonReady, servesMsg),
			want: "False SyncerNotServing: the syncer serves a virtual cluster while its phase is Running; it is Failed"},
		"being deleted: False": {vc: deleting,
			want: "False SyncerNotServing: the syncer stopped serving this virtual cluster: it is being deleted"},
		"never served, the manager's Unknown: no change": {vc: vcWith(v1alpha1.PhasePending, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, "no syncer has picked this virtual cluster up yet")},
		"no condition, not Running: no change":           {vc: vcWith(v1alpha1.PhaseProvisioning, "", "", "")},
		"Running but cannot be served: False with why": {vc: vcWith(v1alpha1.PhaseRunning, metav1.ConditionUnknown, v1alpha1.ReasonSyncerNotServing, "no syncer has picked this virtual cluster up yet"),
			err:  errors.New("reading the kubeconfig Secret default/demo-kubeconfig: not found"),
			want: "False SyncerNotServing: the syncer cannot serve this virtual cluster yet, retrying: reading the kubeconfig Secret default/demo-kubeconfig: not found"},
		"the same failure again: no change": {vc: vcWith(v1alpha1.PhaseRunning, metav1.ConditionFalse, v1alpha1.ReasonSyncerNotServing, "the syncer cannot serve this virtual cluster yet, retrying: boom"),
			err: errors.New("boom")},
		"Running, no failure, not serving: no change": {vc: vcWith(v1alpha1.PhaseRunning, metav1.ConditionTrue, v1alpha1.ReasonReady, servesMsg)},
	} {
		t.Run(name, func(t *testing.T) {
			got := ""
			if c := syncingCondition(tc.vc, tc.serving, tc.err); c != nil {
				got = fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
				if c.Type != v1alpha1.ConditionSyncing || c.ObservedGeneration != 3 {
					t.Errorf("type %q, observedGeneration %d; want Syncing, 3", c.Type, c.ObservedGeneration)
				}
			}
			if got != tc.want {
				t.Errorf("syncingCondition = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSyncingConditionRecorded: a VirtualCluster the syncer served that leaves Running gets
// Syncing False, and one that is Running but whose kubeconfig Secret is missing gets Syncing
// False with that failure, in the super cluster.
func TestSyncingConditionRecorded(t *testing.T) {
	s := newSyncer(fake.NewClientset(), newMetrics(nil))
	ctx := testContext(t)
	failed := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "failed"}}
	failed.Status.Phase, failed.Status.ClusterKey = v1alpha1.PhaseFailed, "failed-key"
	failed.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionSyncing, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonReady, Message: "the syncer serves this virtual cluster"}}
	running := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "running"}}
	running.Status.Phase, running.Status.ClusterKey = v1alpha1.PhaseRunning, "running-key"
	withVirtualClusters(t, s, failed, running)
	syncing := func(name string) string { return syncingIn(t, s, name) }

	if err := s.syncVirtualCluster(ctx, "default/failed"); err != nil {
		t.Fatal(err)
	}
	if got, want := syncing("failed"), "False SyncerNotServing: the syncer serves a virtual cluster while its phase is Running; it is Failed"; got != want {
		t.Errorf("Syncing of a VirtualCluster that left Running: %q, want %q", got, want)
	}

	err := s.syncVirtualCluster(ctx, "default/running")
	if err == nil {
		t.Fatal("a VirtualCluster without its kubeconfig Secret was served")
	}
	s.reportNotServing(ctx, "default/running", err)
	if got, want := syncing("running"), "False SyncerNotServing: the syncer cannot serve this virtual cluster yet, retrying: "+err.Error(); got != want {
		t.Errorf("Syncing of a VirtualCluster the syncer cannot serve: %q, want %q", got, want)
	}
}

// servedAs makes h's tenant the one the syncer serves for vc (default/demo), from a kubeconfig
// Secret it puts in the super cluster, and without a PKI Secret: syncVirtualCluster finds it
// served already.
func servedAs(t *testing.T, h *harness, vc *v1alpha1.VirtualCluster) {
	t.Helper()
	kubeconfig := []byte("apiVersion: v1\nkind: Config\n")
	if _, err := h.super.CoreV1().Secrets(vc.Namespace).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: vc.Namespace, Name: vc.KubeconfigSecretName()},
		Data:       map[string][]byte{"kubeconfig": kubeconfig}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.t.fingerprint = fingerprintOf(kubeconfig, tenantPKI{})
	h.t.synced = func() bool { return true }
	h.s.vcs[vc.Namespace+"/"+vc.Name] = h.t
}

// withVirtualClusters puts vcs in s's VirtualCluster cache and in its super cluster (a fake
// dynamic client), where the syncer records their Syncing condition.
func withVirtualClusters(t *testing.T, s *Syncer, vcs ...*v1alpha1.VirtualCluster) {
	t.Helper()
	var objs []runtime.Object
	s.vcLister = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, vc := range vcs {
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(vc)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		u.SetAPIVersion(v1alpha1.GroupVersion.String())
		u.SetKind("VirtualCluster")
		if err := s.vcLister.Add(u); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	s.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{virtualClusterGVR: "VirtualClusterList"}, objs...)
}

// syncingIn is the Syncing condition of VirtualCluster default/name in s's super cluster, as
// "status reason: message", or "none".
func syncingIn(t *testing.T, s *Syncer, name string) string {
	t.Helper()
	u, err := s.dyn.Resource(virtualClusterGVR).Namespace("default").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vc := &v1alpha1.VirtualCluster{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, vc); err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionSyncing)
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}

// TestSyncingHeldBackWhileLeaseLapsed: a syncer that has not renewed its heartbeat Lease within
// its duration (the super cluster refuses it: no Role) serves a Running VirtualCluster but leaves
// its Syncing as the manager set it, Unknown, instead of setting it True for the manager to set
// Unknown again; once the Lease is renewed, the VirtualClusters held back are queued again, and
// the next sync sets Syncing True.
func TestSyncingHeldBackWhileLeaseLapsed(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx := testContext(t)
	const stopped = "the syncer's lease vnest-system/vnest-syncer was last renewed at 2026-12-08T09:59:09Z, 51s ago: the syncer may have stopped"
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "demo"}}
	vc.Status.Phase, vc.Status.ClusterKey = v1alpha1.PhaseRunning, testKey
	vc.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionSyncing, Status: metav1.ConditionUnknown,
		Reason: v1alpha1.ReasonSyncerNotServing, Message: stopped}}
	served := vc.DeepCopy()
	served.Name = "served"
	meta.SetStatusCondition(&served.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionSyncing, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonReady, Message: "the syncer serves this virtual cluster"})
	servedAs(t, h, vc)
	withVirtualClusters(t, h.s, vc, served)
	refused := true
	h.super.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refused {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "vnest-syncer", errors.New("no Role"))
		}
		return false, nil, nil
	})
	now := time.Now()
	h.s.lease = testHeartbeat(h.super, &now)
	if err := h.s.lease.renew(ctx); err == nil {
		t.Fatal("the refused lease was renewed")
	}

	if err := h.s.syncVirtualCluster(ctx, "default/demo"); err != nil {
		t.Fatal(err)
	}
	if got, want := syncingIn(t, h.s, "demo"), "Unknown SyncerNotServing: "+stopped; got != want {
		t.Errorf("served while the lease is not renewed: Syncing %q, want %q (the manager's, kept)", got, want)
	}

	refused = false
	if err := h.s.lease.renew(ctx); err != nil {
		t.Fatal(err)
	}
	h.s.resyncHeldBack(ctx)
	if n := h.s.vcQueue.Len(); n != 1 {
		t.Errorf("%d VirtualClusters queued again once the lease is renewed, want 1 (default/demo; default/served is True)", n)
	}
	if err := h.s.syncVirtualCluster(ctx, "default/demo"); err != nil {
		t.Fatal(err)
	}
	if got, want := syncingIn(t, h.s, "demo"), "True Ready: the syncer serves this virtual cluster"; got != want {
		t.Errorf("served with the lease renewed: Syncing %q, want %q", got, want)
	}
}
