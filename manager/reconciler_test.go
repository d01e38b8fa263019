package manager

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
)

// newTestReconciler is a Reconciler on a fake client holding objs; it has
// no default storage and no provisioners, so any attempt to reach etcd or
// run a control plane shows up as a failure.
func newTestReconciler(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) (*Reconciler, client.Client, *events.FakeRecorder) {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(objs...).WithStatusSubresource(&v1alpha1.VirtualCluster{})
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	c := b.Build()
	rec := events.NewFakeRecorder(20)
	return &Reconciler{Client: c, APIReader: c, Scheme: c.Scheme(), Recorder: rec}, c, rec
}

func reconcileOnce(t *testing.T, r *Reconciler, vc *v1alpha1.VirtualCluster) ctrl.Result {
	t.Helper()
	res, err := r.Reconcile(testContext(t), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(vc)})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return res
}

// testContext carries a logger that writes to the test's output.
func testContext(t *testing.T) context.Context {
	return klog.NewContext(t.Context(), testr.New(t))
}

func drainEvents(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestReconcileMissingEtcdSecret(t *testing.T) {
	vc := makeVC("demo").EtcdStorage("etcd-creds", "https://etcd:2379").Obj()
	r, c, rec := newTestReconciler(t, nil, vc)
	res := reconcileOnce(t, r, vc)
	if res.RequeueAfter != retryFailure {
		t.Errorf("RequeueAfter = %s, want %s (retried until the Secret appears)", res.RequeueAfter, retryFailure)
	}
	got := &v1alpha1.VirtualCluster{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), got); err != nil {
		t.Fatal(err)
	}
	if !controllerutil.ContainsFinalizer(got, Finalizer) {
		t.Error("finalizer missing")
	}
	if got.Status.Phase != v1alpha1.PhaseFailed || got.Status.ObservedGeneration != 1 || got.Status.ClusterKey == "" {
		t.Errorf("status = %+v, want phase Failed, observedGeneration 1 and a cluster key", got.Status)
	}
	cp := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionControlPlaneReady)
	if cp == nil || cp.Reason != v1alpha1.ReasonCredentialsInvalid || !strings.Contains(cp.Message, "etcd credentials Secret default/etcd-creds (spec.storage.etcd.credentialsSecretRef) not found") {
		t.Errorf("ControlPlaneReady = %+v", cp)
	}
	if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning CredentialsInvalid etcd credentials Secret default/etcd-creds") {
		t.Errorf("events = %q, want one Warning CredentialsInvalid", evs)
	}
	if _, ok := got.Annotations[annotationEtcdInitialized]; ok {
		t.Error("etcd marked initialized although it was never reached")
	}
	var secrets corev1.SecretList
	if err := c.List(t.Context(), &secrets); err != nil || len(secrets.Items) > 0 {
		t.Errorf("Secrets created before storage was resolved: %v %v", secrets.Items, err)
	}
}

func TestReconcileNoDefaultStorage(t *testing.T) {
	vc := makeVC("demo").Obj()
	r, c, _ := newTestReconciler(t, nil, vc)
	reconcileOnce(t, r, vc)
	got := &v1alpha1.VirtualCluster{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), got); err != nil {
		t.Fatal(err)
	}
	cp := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionControlPlaneReady)
	if cp == nil || !strings.Contains(cp.Message, "this manager has none (--etcd-servers): set spec.storage.etcd") {
		t.Errorf("ControlPlaneReady = %+v", cp)
	}
}

func TestReconcileStatusConflictRequeues(t *testing.T) {
	vc := makeVC("demo").Obj()
	conflict := &interceptor.Funcs{SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
		return apierrors.NewConflict(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "virtualclusters"}, vc.Name, nil)
	}}
	r, _, _ := newTestReconciler(t, conflict, vc)
	res, err := r.Reconcile(testContext(t), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(vc)})
	if err != nil || res.RequeueAfter == 0 {
		t.Errorf("Reconcile = %+v, %v; want a quiet requeue on a status conflict", res, err)
	}
}

// TestReconcileDeleteNeverProvisioned deletes a VirtualCluster whose
// storage never resolved: no etcd is touched (there is none here), its
// super namespaces and Secrets go, foreign objects stay, the finalizer goes.
func TestReconcileDeleteNeverProvisioned(t *testing.T) {
	const key = "demo-12345678"
	vc := makeVC("demo").Key(key).Finalizer().Deleting().EtcdStorage("gone", "https://etcd:2379").Obj()
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	owned := map[string]string{ownership.LabelClusterKey: key}
	secret := func(name string, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels}}
	}
	r, c, _ := newTestReconciler(t, nil, vc,
		ns(key+"-default", owned), ns(key+"-kube-system", owned),
		ns("lookalike", owned),     // label without the prefix
		ns(key+"-unlabelled", nil), // prefix without the label
		secret("demo-kubeconfig", map[string]string{ownership.LabelControlPlane: key}), // ours
		secret("demo-pki", owned), // someone else's, same name (a synced object's label is not ours)
		runtimeClass(key+"-gvisor", map[string]string{ownership.LabelClusterKey: key, ownership.LabelTenantNamespace: ""}), // the syncer's
		runtimeClass(key+"-kata", owned), // no empty tenant-namespace label: not a synced class
		runtimeClass("other-00000000-gvisor", map[string]string{ownership.LabelClusterKey: "other-00000000", ownership.LabelTenantNamespace: ""}),
	)
	reconcileUntilGone(t, r, c, vc)
	var nss corev1.NamespaceList
	if err := c.List(t.Context(), &nss); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, n := range nss.Items {
		left = append(left, n.Name)
	}
	if want := "demo-12345678-unlabelled,lookalike"; strings.Join(left, ",") != want {
		t.Errorf("namespaces left = %v, want %s", left, want)
	}
	var rcs nodev1.RuntimeClassList
	if err := c.List(t.Context(), &rcs); err != nil {
		t.Fatal(err)
	}
	left = nil
	for _, rc := range rcs.Items {
		left = append(left, rc.Name)
	}
	if want := "demo-12345678-kata,other-00000000-gvisor"; strings.Join(left, ",") != want {
		t.Errorf("RuntimeClasses left = %v, want %s", left, want)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "demo-pki"}, &corev1.Secret{}); err != nil {
		t.Errorf("a Secret that is not the tenant's was deleted: %v", err)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "demo-kubeconfig"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("the tenant's kubeconfig Secret is still there: %v", err)
	}
}

// stoppingProvisioner runs nothing and records the control planes it was asked to stop.
type stoppingProvisioner struct{ stopped []string }

func (p *stoppingProvisioner) Endpoint(context.Context, *v1alpha1.VirtualCluster) (endpoint, error) {
	return endpoint{}, nil
}
func (p *stoppingProvisioner) Ensure(context.Context, tenant) (bool, error) { return false, nil }
func (p *stoppingProvisioner) Teardown(_ context.Context, vc *v1alpha1.VirtualCluster) (bool, error) {
	p.stopped = append(p.stopped, vc.Name)
	return true, nil
}

// TestReconcileDeleteBeforeStatusWritten: a VirtualCluster deleted before its first status
// write (it conflicted with the delete) has no cluster key in its status, but may have a
// control plane and super namespaces already; the deletion finds them under the key its
// identity gives, and stops and deletes them before the finalizer goes.
func TestReconcileDeleteBeforeStatusWritten(t *testing.T) {
	vc := makeVC("demo").Finalizer().Deleting().Obj()
	key := v1alpha1.ClusterKey(vc.Namespace, vc.Name, vc.UID)
	superNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key + "-default", Labels: map[string]string{ownership.LabelClusterKey: key}}}
	r, c, _ := newTestReconciler(t, nil, vc, superNS)
	prov := &stoppingProvisioner{}
	r.provisioners = map[v1alpha1.Provisioner]provisioner{v1alpha1.ProvisionerLocal: prov}
	reconcileUntilGone(t, r, c, vc)
	if len(prov.stopped) == 0 {
		t.Error("the control plane was never stopped")
	}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(superNS), &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("the tenant's super namespace %s is still there: %v", superNS.Name, err)
	}
}

// TestReconcileDeleteClusterControlPlane: the cluster provisioner deletes
// the control plane's Deployment and Service only when they are the
// VirtualCluster's; a user's (or another tenant's) objects of the same name
// stay and do not hold up the deletion.
func TestReconcileDeleteClusterControlPlane(t *testing.T) {
	const key = "demo-12345678"
	vc := makeVC("demo").Key(key).Provisioner(v1alpha1.ProvisionerCluster).Finalizer().Deleting().Obj()
	other := makeVC("other").Key("other-87654321").Obj()
	controlled := func(m metav1.ObjectMeta, owner *v1alpha1.VirtualCluster) metav1.ObjectMeta {
		m.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, v1alpha1.GroupVersion.WithKind("VirtualCluster"))}
		return m
	}
	for name, tc := range map[string]struct {
		meta        metav1.ObjectMeta
		wantDeleted bool
	}{
		"ours":                              {controlled(objectMeta(vc, "demo-apiserver"), vc), true},
		"ours, controlled but unlabelled":   {controlled(metav1.ObjectMeta{Name: "demo-apiserver", Namespace: "default"}, vc), true},
		"a user's objects of the same name": {metav1.ObjectMeta{Name: "demo-apiserver", Namespace: "default", Labels: map[string]string{"app": "mine"}}, false},
		"another tenant's":                  {controlled(objectMeta(other, "demo-apiserver"), other), false},
	} {
		t.Run(name, func(t *testing.T) {
			dep := &appsv1.Deployment{ObjectMeta: tc.meta}
			svc := &corev1.Service{ObjectMeta: tc.meta}
			r, c, _ := newTestReconciler(t, nil, vc, dep, svc)
			r.provisioners = map[v1alpha1.Provisioner]provisioner{
				v1alpha1.ProvisionerCluster: &clusterProvisioner{client: c, reader: c, scheme: c.Scheme()},
			}
			reconcileUntilGone(t, r, c, vc)
			for _, obj := range []client.Object{dep, svc} {
				err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj)
				if deleted := apierrors.IsNotFound(err); deleted != tc.wantDeleted || (!deleted && err != nil) {
					t.Errorf("%T: deleted = %v (%v), want %v", obj, deleted, err, tc.wantDeleted)
				}
			}
		})
	}
}

// TestReconcileKubeconfigForeignSecret: a Secret "<name>-kubeconfig" that
// is not the VirtualCluster's is left alone and makes KubeconfigReady
// False; the control plane, which answered, stays ControlPlaneReady.
func TestReconcileKubeconfigForeignSecret(t *testing.T) {
	vc := makeVC("demo").Key("demo-12345678").Obj()
	vc.Status.KubeconfigSecretName = vc.KubeconfigSecretName()
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "demo-kubeconfig", Namespace: "default"}}
	r, c, rec := newTestReconciler(t, nil, vc, foreign)
	s := &scope{vc: vc, original: vc.DeepCopy(), endpoint: endpoint{URL: "https://192.0.2.1:7000"}}
	setControlPlaneReady(vc) // reconcileControlPlane succeeded
	err := r.reconcileKubeconfig(testContext(t), s)
	if err == nil {
		t.Fatal("a foreign Secret was taken for the kubeconfig")
	}
	res, _ := r.phaseFailed(testContext(t), vc, asPhaseError(err, v1alpha1.ReasonKubeconfigWriteFailed), err)
	if res.RequeueAfter != retryFailure {
		t.Errorf("RequeueAfter = %s, want %s (retried until the Secret goes)", res.RequeueAfter, retryFailure)
	}
	if cp := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionControlPlaneReady); cp.Status != metav1.ConditionTrue {
		t.Errorf("ControlPlaneReady = %s/%s %q, want it left True", cp.Status, cp.Reason, cp.Message)
	}
	kc := meta.FindStatusCondition(vc.Status.Conditions, v1alpha1.ConditionKubeconfigReady)
	if kc == nil || kc.Status != metav1.ConditionFalse || kc.Reason != v1alpha1.ReasonKubeconfigWriteFailed ||
		!strings.Contains(kc.Message, "Secret default/demo-kubeconfig exists but does not belong to this virtual cluster") {
		t.Errorf("KubeconfigReady = %+v", kc)
	}
	if got := computePhase(vc); got != v1alpha1.PhaseFailed {
		t.Errorf("phase = %s, want Failed (the Secret must be removed by hand)", got)
	}
	if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning KubeconfigWriteFailed Secret default/demo-kubeconfig") {
		t.Errorf("events = %q, want one Warning KubeconfigWriteFailed", evs)
	}
	got := &corev1.Secret{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(foreign), got); err != nil || len(got.Labels) > 0 || len(got.Data) > 0 || len(got.OwnerReferences) > 0 {
		t.Errorf("the foreign Secret was changed: %+v %v", got, err)
	}
}

// reconcileUntilGone reconciles vc until it is gone, at most 10 times.
func reconcileUntilGone(t *testing.T, r *Reconciler, c client.Client, vc *v1alpha1.VirtualCluster) {
	t.Helper()
	for range 10 {
		reconcileOnce(t, r, vc)
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), &v1alpha1.VirtualCluster{}); apierrors.IsNotFound(err) {
			return
		}
	}
	t.Fatal("the VirtualCluster is still there after 10 reconciles")
}

func runtimeClass(name string, labels map[string]string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Handler: "runc"}
}

// TestReconcileDeleteBlockedByStorage: a tenant whose etcd was written to
// and whose credentials Secret is there, but whose etcd cannot be reached
// now, keeps its finalizer and says why: the deletion is retried.
func TestReconcileDeleteBlockedByStorage(t *testing.T) {
	vc := makeVC("demo").Key("demo-12345678").Finalizer().Deleting().EtcdStorage("etcd-creds", "http://127.0.0.1:1").Obj()
	vc.Annotations = map[string]string{annotationEtcdInitialized: "true"}
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "etcd-creds", Namespace: "default"}}
	r, c, rec := newTestReconciler(t, nil, vc, creds)
	// etcd calls wait for a connection until their deadline: a short one.
	ctx, cancel := context.WithTimeout(testContext(t), 500*time.Millisecond)
	defer cancel()
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(vc)})
	if err != nil || res.RequeueAfter != retryFailure {
		t.Errorf("Reconcile = %+v, %v; want a retry after %s", res, err, retryFailure)
	}
	got := &v1alpha1.VirtualCluster{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(vc), got); err != nil {
		t.Fatalf("the VirtualCluster went away with its etcd keys left behind: %v", err)
	}
	if got.Annotations[annotationEtcdInitialized] == "" {
		t.Error("the etcd cleanup was given up")
	}
	cp := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionControlPlaneReady)
	if got.Status.Phase != v1alpha1.PhaseTerminating || cp == nil || cp.Reason != v1alpha1.ReasonDeleting ||
		!strings.Contains(cp.Message, "deleting the tenant's etcd keys, user and role failed: etcd [http://127.0.0.1:1]: deleting the keys under /vnest/tenants/demo-12345678/ failed") ||
		!strings.Contains(cp.Message, "remove the finalizer tenancy.vnest.dev/cleanup by hand") {
		t.Errorf("phase %s, ControlPlaneReady %+v", got.Status.Phase, cp)
	}
	if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning StorageUnavailable deleting the tenant's etcd keys") {
		t.Errorf("events = %q", evs)
	}
}

// TestReconcileDeleteCredentialsSecretGone: the credentials Secret of
// spec.storage.etcd went before the VirtualCluster (its namespace is being
// deleted): nothing can reach the etcd, so the deletion leaves the tenant's
// keys there, says so in a Warning event (once), and finishes.
func TestReconcileDeleteCredentialsSecretGone(t *testing.T) {
	vc := makeVC("demo").Key("demo-12345678").Finalizer().Deleting().EtcdStorage("etcd-creds", "https://etcd:2379").Obj()
	vc.Annotations = map[string]string{annotationEtcdInitialized: "true"}
	// A Secret of the tenant's that takes two passes to go: etcd is passed twice.
	kubeconfig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "demo-kubeconfig", Namespace: "default",
		Labels: map[string]string{ownership.LabelControlPlane: "demo-12345678"}}}
	r, c, rec := newTestReconciler(t, nil, vc, kubeconfig)
	reconcileUntilGone(t, r, c, vc)
	want := "Warning EtcdDataLeftBehind the tenant's etcd keys under /vnest/tenants/demo-12345678/ " +
		"(and, with etcd auth on, its etcd user and role vnest-tenant-demo-12345678) are left in etcd: " +
		"the etcd credentials Secret default/etcd-creds (spec.storage.etcd.credentialsSecretRef) is gone"
	if evs := drainEvents(rec); len(evs) != 1 || !strings.HasPrefix(evs[0], want) {
		t.Errorf("events = %q, want one starting %q", evs, want)
	} else if !strings.HasSuffix(evs[0], "; its endpoints: [https://etcd:2379]") {
		t.Errorf("event %q does not name the etcd's endpoints", evs[0])
	}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(kubeconfig), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("the tenant's kubeconfig Secret is still there: %v", err)
	}
}

// TestEventNotesFitTheAPI: an Event whose note is over 1024 bytes is refused
// by the apiserver (events.k8s.io/v1) and lost, so every note the manager
// writes must fit, also for a VirtualCluster at the schema's limits: a
// 63-character namespace, a 253-character credentials Secret name, 16 etcd
// endpoints of 512 characters. The EtcdDataLeftBehind event is the only
// record, on the VirtualCluster, of the etcd data its deletion leaves.
func TestEventNotesFitTheAPI(t *testing.T) {
	var endpoints []string
	for i := range 16 {
		host := fmt.Sprintf("etcd-%02d.", i)
		endpoints = append(endpoints, "https://"+host+strings.Repeat("e", 512-len("https://")-len(host)-len(".example:2379"))+".example:2379")
	}
	vc := makeVC("demo").Key("demo-12345678").Finalizer().Deleting().EtcdStorage(strings.Repeat("s", 253), endpoints...).Obj()
	vc.Namespace = strings.Repeat("n", 63)
	vc.Annotations = map[string]string{annotationEtcdInitialized: "true"}
	r, c, rec := newTestReconciler(t, nil, vc)
	reconcileUntilGone(t, r, c, vc)
	evs := drainEvents(rec)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for _, e := range evs {
		typ, rest, _ := strings.Cut(e, " ")
		reason, note, _ := strings.Cut(rest, " ")
		if len(note) > maxEventNote {
			t.Errorf("%s %s event: a note of %d bytes, over the API's %d: %.200s…", typ, reason, len(note), maxEventNote, note)
		}
		if !utf8.ValidString(note) {
			t.Errorf("%s %s event: the note is not UTF-8", typ, reason)
		}
		if reason == eventEtcdDataLeftBehind && !strings.Contains(note, "etcdctl del --prefix /vnest/tenants/demo-12345678/") {
			t.Errorf("%s %s event: the note lost how to clean up: %s", typ, reason, note)
		}
	}
}

func TestEventNote(t *testing.T) {
	fits := strings.Repeat("a", maxEventNote)
	if got := eventNote(fits); got != fits {
		t.Errorf("a note of %d bytes was cut to %d", len(fits), len(got))
	}
	// A 3-byte character across the cut is dropped whole.
	long := strings.Repeat("a", maxEventNote-4) + "€€€"
	got := eventNote(long)
	if len(got) > maxEventNote || !utf8.ValidString(got) || !strings.HasSuffix(got, "a…") {
		t.Errorf("eventNote(%d bytes) = %d bytes ending %q, valid UTF-8 %v", len(long), len(got), got[len(got)-8:], utf8.ValidString(got))
	}
}
