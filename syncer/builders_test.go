package syncer

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

const (
	testKey     = "demo-5c9a8459"
	testSuperNS = "demo-5c9a8459-default"
)

var testOwner = mapping.Owner{ClusterKey: testKey, VirtualCluster: "default/demo"}

// The tenant's default namespace and its super namespace, with the labels the syncer gives it:
// only those tell the syncer the super namespace is the tenant namespace's (ensureSuperNamespace).
var (
	tenantDefaultNS = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "uid-ns"}}
	superDefaultNS  = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSuperNS, Labels: map[string]string{
		ownership.LabelClusterKey: testKey, ownership.LabelTenantNamespace: "default"}, Annotations: map[string]string{ownership.AnnotationTenantUID: "uid-ns"}}}
)

// podWrapper is a fluent builder of test pods: MakePod(ns, name).Label(k, v).Obj().
type podWrapper struct{ corev1.Pod }

func MakePod(ns, name string) *podWrapper {
	return &podWrapper{corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "vnest.local/busybox:1"}}},
	}}
}

func (w *podWrapper) Obj() *corev1.Pod { return w.Pod.DeepCopy() }
func (w *podWrapper) Label(k, v string) *podWrapper {
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	w.Labels[k] = v
	return w
}
func (w *podWrapper) Annotation(k, v string) *podWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[k] = v
	return w
}
func (w *podWrapper) UID(uid string) *podWrapper          { w.Pod.UID = types.UID(uid); return w }
func (w *podWrapper) Node(n string) *podWrapper           { w.Spec.NodeName = n; return w }
func (w *podWrapper) Phase(p corev1.PodPhase) *podWrapper { w.Status.Phase = p; return w }
func (w *podWrapper) HostIP(ip string) *podWrapper        { w.Status.HostIP = ip; return w }
func (w *podWrapper) Image(img string) *podWrapper        { w.Spec.Containers[0].Image = img; return w }
func (w *podWrapper) Terminating(grace int64) *podWrapper {
	now := metav1.Now()
	w.DeletionTimestamp, w.DeletionGracePeriodSeconds = &now, &grace
	return w
}

// Owned stamps the pod as the super pod of tenant pod tenantUID in tenant namespace "default".
func (w *podWrapper) Owned(tenantUID string) *podWrapper {
	return w.Label(ownership.LabelClusterKey, testKey).Label(ownership.LabelTenantNamespace, "default").
		Annotation(ownership.AnnotationTenantUID, tenantUID).Annotation(ownership.AnnotationVirtualCluster, "default/demo")
}

// harness is a Syncer on fake clients whose caches the test fills directly.
type harness struct {
	s        *Syncer
	t        *tenant
	super    *fake.Clientset
	tenantCS *fake.Clientset
	recorder *record.FakeRecorder
}

// newHarness builds a Syncer and one tenant. superObjs are in the super cluster and its cache
// (pass live-only objects via super.Tracker()); tenantObjs in the tenant and its cache.
func newHarness(t *testing.T, superObjs, tenantObjs []object) *harness {
	t.Helper()
	h := &harness{super: fake.NewClientset(), tenantCS: fake.NewClientset(), recorder: record.NewFakeRecorder(10)}
	h.s = newSyncer(h.super, newMetrics(nil))
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "demo"}}
	vc.Status.ClusterKey = testKey
	h.t = newTenant(vc, h.tenantCS)
	h.t.wireInformers(informers.NewSharedInformerFactory(h.tenantCS, 0), h.s)
	h.t.recorder = h.recorder
	h.s.queue.AddTenant(testKey)
	h.s.metrics.serve(testKey)
	h.s.tenants[testKey] = h.t
	for _, o := range superObjs {
		h.addTo(t, h.super, h.s.superIndex, o)
	}
	// Super nodes are not filtered by ownership; the node informer has its own store.
	for _, o := range tenantObjs {
		h.addTo(t, h.tenantCS, h.t.index, o)
	}
	h.super.ClearActions()
	h.tenantCS.ClearActions()
	return h
}

// startFromPKISecret starts serving vc as syncVirtualCluster does, with opts and with what the
// syncer reads of vc's PKI Secret in a super cluster holding objs, where every read of a Secret
// fails with readErr when it is set. The tenant is nil when the read failed, as it must then
// when wantErr.
func startFromPKISecret(t *testing.T, opts *completedOptions, objs []object, readErr error, wantErr bool,
	vc *v1alpha1.VirtualCluster, kubeconfig []byte) (*harness, *tenant) {
	t.Helper()
	h := newHarness(t, objs, nil)
	h.s.opts = opts
	if readErr != nil {
		h.super.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, readErr })
	}
	ctx := testContext(t)
	p, err := h.s.readTenantPKI(ctx, vc)
	if (err != nil) != wantErr {
		t.Fatalf("readTenantPKI: %v", err)
	}
	if err != nil {
		return h, nil
	}
	tn, err := h.s.startTenant(ctx, vc, kubeconfig, p, "fp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tn.stop)
	return h, tn
}

func (h *harness) addTo(t *testing.T, cs *fake.Clientset, idx map[kind]cache.Indexer, o object) {
	t.Helper()
	var k kind
	switch o.(type) {
	case *corev1.Pod:
		k = kindPod
	case *corev1.Namespace:
		k = kindNamespace
	case *corev1.ConfigMap:
		k = kindConfigMap
	case *corev1.Secret:
		k = kindSecret
	case *corev1.Service:
		k = kindService
	case *corev1.Endpoints:
		k = kindEndpoints
	case *corev1.Node:
		k = kindNode
	case *corev1.PersistentVolumeClaim:
		k = kindPVC
	case *policyv1.PodDisruptionBudget:
		k = kindPDB
	case *networkingv1.Ingress:
		k = kindIngress
	case *corev1.Event:
		k = kindEvent
	case *networkingv1.NetworkPolicy:
		k = kindNetworkPolicy
	case *corev1.PersistentVolume:
		k = kindPV
	case *storagev1.StorageClass:
		k = kindStorageClass
	case *schedulingv1.PriorityClass:
		k = kindPriorityClass
	case *discoveryv1.EndpointSlice:
		k = kindEndpointSlice
	case *nodev1.RuntimeClass:
		k = kindRuntimeClass
	default:
		t.Fatalf("unsupported %T", o)
	}
	if err := cs.Tracker().Add(o); err != nil {
		t.Fatal(err)
	}
	if k == kindEvent {
		_ = h.s.eventCache.Indexer.Add(o)
		return
	}
	if k == kindNode && cs == h.super {
		_ = h.s.nodeFactory.Core().V1().Nodes().Informer().GetIndexer().Add(o)
		return
	}
	// Super PVs are unfiltered; super StorageClasses and PriorityClasses are the published ones.
	if k == kindPV && cs == h.super {
		_ = h.s.nodeFactory.Core().V1().PersistentVolumes().Informer().GetIndexer().Add(o)
		return
	}
	if store := h.s.publishedStore(k); store != nil && cs == h.super {
		_ = store.Add(o)
		return
	}
	if err := idx[k].Add(o); err != nil {
		t.Fatal(err)
	}
}

// writes lists the mutating actions on cs as "verb resource[/sub] ns/name".
func writes(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		verb := a.GetVerb()
		if verb == "get" || verb == "list" || verb == "watch" {
			continue
		}
		res := a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			res += "/" + sub
		}
		name := ""
		switch a := a.(type) {
		case k8stesting.CreateAction:
			if m, ok := a.GetObject().(metav1.Object); ok {
				name = m.GetName()
			}
		case k8stesting.UpdateAction:
			if m, ok := a.GetObject().(metav1.Object); ok {
				name = m.GetName()
			}
		case k8stesting.DeleteAction:
			name = a.GetName()
		}
		out = append(out, fmt.Sprintf("%s %s %s/%s", verb, res, a.GetNamespace(), name))
	}
	sort.Strings(out)
	return out
}

func events(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// testContext is t.Context() with a logger that writes through t.
func testContext(t *testing.T) context.Context {
	logger, _ := ktesting.NewTestContext(t)
	return klog.NewContext(t.Context(), logger)
}

var defaultPolicy = v1alpha1.PolicySpec{}

func cmpSortKeys(less func(a, b objKey) bool) cmp.Option { return cmpopts.SortSlices(less) }

// syncWebDown syncs tenant pod default/web and returns the super pod it wrote.
func (h *harness) syncWebDown(t *testing.T) *corev1.Pod {
	t.Helper()
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	sp, err := h.super.CoreV1().Pods(testSuperNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// syncRound syncs tenant pod default/web, as it is in the tenant cache, and puts the super pod it
// left in the super cache, as its event would. It returns that super pod and the round's super
// writes and events.
func (h *harness) syncRound(t *testing.T) (sp *corev1.Pod, superWrites, evs []string) {
	t.Helper()
	h.super.ClearActions()
	sp = h.syncWebDown(t)
	if err := h.s.superIndex[kindPod].Update(sp); err != nil {
		t.Fatal(err)
	}
	return sp, writes(h.super), events(h.recorder)
}
