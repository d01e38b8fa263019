package syncer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/kubernetes/pkg/serviceaccount"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/apiserver/layout"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// tenantObjects is what a tenant apiserver's token authenticator looks up: the service account,
// pod and node a token names.
type tenantObjects struct {
	sas   map[string]*corev1.ServiceAccount
	pods  map[string]*corev1.Pod
	nodes map[string]*corev1.Node
}

func notFound(resource, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
}

func (o tenantObjects) GetServiceAccount(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	if sa, ok := o.sas[ns+"/"+name]; ok {
		return sa, nil
	}
	return nil, notFound("serviceaccounts", name)
}

func (o tenantObjects) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if p, ok := o.pods[ns+"/"+name]; ok {
		return p, nil
	}
	return nil, notFound("pods", name)
}

func (o tenantObjects) GetSecret(_ context.Context, _, name string) (*corev1.Secret, error) {
	return nil, notFound("secrets", name)
}

func (o tenantObjects) GetNode(_ context.Context, name string) (*corev1.Node, error) {
	if n, ok := o.nodes[name]; ok {
		return n, nil
	}
	return nil, notFound("nodes", name)
}

// testSigningKey is a tenant service-account key as the manager makes them (ECDSA P-256), PEM.
func testSigningKey(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pemKey
}

// authenticate is what the tenant apiserver (upstream's service-account token authenticator,
// with the tenant's issuer and public key) makes of token when audiences are its audiences.
func authenticate(t *testing.T, key *ecdsa.PrivateKey, objs tenantObjects, audiences []string, token string) (*authenticator.Response, error) {
	t.Helper()
	keys, err := serviceaccount.StaticPublicKeysGetter([]any{&key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	issuer := layout.ServiceAccountIssuer(layout.DefaultClusterDomain)
	authn := serviceaccount.JWTTokenAuthenticator([]string{issuer}, keys, authenticator.Audiences(audiences), serviceaccount.NewValidator(objs))
	resp, ok, err := authn.AuthenticateToken(context.Background(), token)
	if err == nil && !ok {
		t.Fatal("the token is not a service-account token of the tenant's issuer")
	}
	return resp, err
}

// TestTokenSignerIssue: a token the syncer signs is one the tenant authenticates as the pod's
// service account, with the pod (and, once bound, the node) in its extra, for the audience
// asked for and no other, until the pod or the service account is gone.
func TestTokenSignerIssue(t *testing.T) {
	key, keyPEM := testSigningKey(t)
	issuer := layout.ServiceAccountIssuer(layout.DefaultClusterDomain)
	signer, err := newTokenSigner(issuer, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "builder", UID: "uid-builder"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"}, Spec: corev1.PodSpec{ServiceAccountName: "builder"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", UID: "uid-vm"}}
	all := tenantObjects{
		sas:   map[string]*corev1.ServiceAccount{"default/builder": sa},
		pods:  map[string]*corev1.Pod{"default/web": pod},
		nodes: map[string]*corev1.Node{"vm": node},
	}
	bound := authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3607), BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web", UID: "uid-web"}}
	withAudience := *bound.DeepCopy()
	withAudience.Audiences = []string{"vault"}
	now := time.Now()
	for _, tc := range []struct {
		name      string
		spec      authenticationv1.TokenRequestSpec
		node      *corev1.Node
		objs      tenantObjects
		audiences []string // the authenticator's
		wantExtra map[string]string
		wantErr   string // from the authenticator
	}{
		{name: "pod not bound", spec: bound, objs: all, audiences: []string{issuer},
			wantExtra: map[string]string{"authentication.kubernetes.io/pod-name": "web", "authentication.kubernetes.io/pod-uid": "uid-web"}},
		{name: "pod bound to a node", spec: bound, node: node, objs: all, audiences: []string{issuer},
			wantExtra: map[string]string{"authentication.kubernetes.io/pod-uid": "uid-web", "authentication.kubernetes.io/node-name": "vm", "authentication.kubernetes.io/node-uid": "uid-vm"}},
		{name: "node the tenant does not have", spec: bound, node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}, objs: all, audiences: []string{issuer},
			wantExtra: map[string]string{"authentication.kubernetes.io/node-name": "gone"}},
		{name: "audience of the pod's own", spec: withAudience, objs: all, audiences: []string{"vault"},
			wantExtra: map[string]string{"authentication.kubernetes.io/pod-name": "web"}},
		{name: "not for the tenant's API", spec: withAudience, objs: all, audiences: []string{issuer}, wantErr: "audience"},
		{name: "pod gone", spec: bound, objs: tenantObjects{sas: all.sas}, audiences: []string{issuer}, wantErr: "invalidated"},
		{name: "service account recreated", spec: bound, audiences: []string{issuer}, wantErr: "does not match",
			objs: tenantObjects{pods: all.pods, sas: map[string]*corev1.ServiceAccount{"default/builder": {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "builder", UID: "other"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token, expires, err := signer.issue(context.Background(), sa, pod, tc.node, tc.spec, now)
			if err != nil {
				t.Fatal(err)
			}
			if want := now.Add(3607 * time.Second); !expires.Equal(want) {
				t.Errorf("expires %v, want %v", expires, want)
			}
			resp, err := authenticate(t, key, tc.objs, tc.audiences, token)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("authenticated: %v; want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.User.GetName(); got != "system:serviceaccount:default:builder" {
				t.Errorf("user %q", got)
			}
			for k, v := range tc.wantExtra {
				if got := resp.User.GetExtra()[k]; len(got) != 1 || got[0] != v {
					t.Errorf("extra %s = %v, want %q", k, got, v)
				}
			}
			if tc.node == nil && len(resp.User.GetExtra()["authentication.kubernetes.io/node-name"]) > 0 {
				t.Errorf("a token for an unbound pod names a node: %v", resp.User.GetExtra())
			}
		})
	}
}

// TestTokenSignerRefuses what the tenant's TokenRequest API refuses, with its kind of error.
func TestTokenSignerRefuses(t *testing.T) {
	_, keyPEM := testSigningKey(t)
	signer, err := newTokenSigner("https://kubernetes.default.svc.cluster.local", keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "builder", UID: "uid-builder"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"}, Spec: corev1.PodSpec{ServiceAccountName: "other"}}
	if _, _, err := signer.issue(context.Background(), sa, pod, nil, authenticationv1.TokenRequestSpec{}, time.Now()); !apierrors.IsBadRequest(err) {
		t.Errorf("a token of another service account than the pod's: %v, want BadRequest", err)
	}
	pod.Spec.ServiceAccountName = "builder"
	if _, _, err := signer.issue(context.Background(), sa, pod, nil, authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](60)}, time.Now()); !apierrors.IsBadRequest(err) {
		t.Errorf("a token for a minute: %v, want BadRequest", err)
	}
	if _, err := newTokenSigner("https://x", []byte("not a key")); err == nil {
		t.Error("a signer from a key that is none")
	}
}

// TestPodTokenSigned: with the tenant's key, a pod's token Secret holds tokens the syncer signed
// (the tenant authenticates them as the pod's service account, naming the node once the pod is
// bound) and the tenant is asked for no token; a service account the tenant does not have gets
// the pod a FailedMount event, as a refused TokenRequest does.
func TestPodTokenSigned(t *testing.T) {
	key, keyPEM := testSigningKey(t)
	pod := MakePod("default", "web").Obj()
	pod.Spec.ServiceAccountName = "builder"
	pod.Spec.NodeName = "vm"
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "builder", UID: "uid-builder"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", UID: "uid-vm"}}
	h := newTokenHarness(t, pod)
	h.addTo(t, h.tenantCS, h.t.index, node)
	if h.t.signer, _ = newTokenSigner(layout.ServiceAccountIssuer(layout.DefaultClusterDomain), keyPEM); h.t.signer == nil {
		t.Fatal("no signer")
	}
	saInformer := informers.NewSharedInformerFactory(h.tenantCS, 0).Core().V1().ServiceAccounts()
	if err := saInformer.Informer().GetIndexer().Add(sa); err != nil {
		t.Fatal(err)
	}
	h.t.serviceAccounts = saInformer.Lister()
	h.tenantCS.ClearActions()

	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	for _, a := range h.tenantCS.Actions() {
		if a.GetSubresource() == "token" {
			t.Errorf("the tenant was asked for a token: %v", a)
		}
	}
	sec, err := h.super.CoreV1().Secrets(mapping.SuperNamespace(h.t.key, "default")).Get(ctx, "vnest-token-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	objs := tenantObjects{sas: map[string]*corev1.ServiceAccount{"default/builder": sa}, pods: map[string]*corev1.Pod{"default/web": pod}}
	resp, err := authenticate(t, key, objs, []string{layout.ServiceAccountIssuer(layout.DefaultClusterDomain)}, string(sec.Data["token"]))
	if err != nil {
		t.Fatalf("the tenant refuses the signed token: %v", err)
	}
	if got := resp.User.GetExtra()["authentication.kubernetes.io/node-uid"]; len(got) != 1 || got[0] != "uid-vm" || sec.Annotations[annotationTokenNode] != "vm" {
		t.Errorf("node-uid %v, token-node %q; want the tenant node vm's", got, sec.Annotations[annotationTokenNode])
	}

	// A service account the tenant's cache lacks is read live; one the tenant lacks is a refusal.
	ghost := MakePod("default", "ghost").Obj()
	ghost.Spec.ServiceAccountName = "ghost"
	ghost.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h.addTo(t, h.tenantCS, h.t.index, ghost)
	h.tenantCS.ClearActions()
	if err := h.s.syncPod(ctx, h.t, "default", "ghost"); err == nil || !apierrors.IsNotFound(err) {
		t.Fatalf("syncPod of a pod whose service account is gone = %v; want NotFound", err)
	}
	read := false
	for _, a := range h.tenantCS.Actions() {
		read = read || a.GetVerb() == "get" && a.GetResource().Resource == "serviceaccounts"
		if a.GetSubresource() == "token" {
			t.Errorf("the tenant was asked for a token: %v", a)
		}
	}
	if !read {
		t.Errorf("tenant requests %v, want a GET of the service account", h.tenantCS.Actions())
	}
	select {
	case e := <-h.recorder.Events:
		if !strings.Contains(e, reasonFailedMount) || !strings.Contains(e, `"ghost" not found`) {
			t.Errorf("event %q, want %s with the tenant's NotFound", e, reasonFailedMount)
		}
	default:
		t.Error("no event recorded")
	}
}

// TestTenantSignerFromPKISecret: a served tenant gets a signer, with the issuer of its cluster
// domain, when the syncer can read the service-account key in the tenant's PKI Secret; a Secret
// missing or refused leaves the tenant's TokenRequest API in charge, and any other failure to
// read it is retried. A new key makes a new fingerprint, so the tenant is served again with it.
func TestTenantSignerFromPKISecret(t *testing.T) {
	_, keyPEM := testSigningKey(t)
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "teams", Name: "a"}}
	vc.Spec.ClusterDomain = "corp.example"
	vc.Status.ClusterKey = "a-1234"
	pkiSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "teams", Name: "a-pki"}, Data: map[string][]byte{"sa.key": keyPEM}}
	kubeconfig := []byte(`apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: t, user: {token: x}}]
contexts: [{name: t, context: {cluster: t, user: t}}]
current-context: t
`)
	for _, tc := range []struct {
		name       string
		objs       []object
		readErr    error
		wantSigner bool
		wantErr    bool
	}{
		{name: "key in the PKI Secret", objs: []object{pkiSecret}, wantSigner: true},
		{name: "no PKI Secret"},
		{name: "PKI Secret refused", objs: []object{pkiSecret}, readErr: apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "a-pki", errors.New("no"))},
		{name: "super cluster failing", objs: []object{pkiSecret}, readErr: apierrors.NewInternalError(errors.New("etcd")), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tn := startFromPKISecret(t, &completedOptions{Options: &Options{QPS: 5, Burst: 10}}, tc.objs, tc.readErr, tc.wantErr, vc, kubeconfig)
			if tn == nil {
				return
			}
			if (tn.signer != nil) != tc.wantSigner || (tn.serviceAccounts != nil) != tc.wantSigner {
				t.Fatalf("signer %v, service-account cache %v; want them: %v", tn.signer, tn.serviceAccounts, tc.wantSigner)
			}
			if tc.wantSigner && tn.signer.issuer != "https://kubernetes.default.svc.corp.example" {
				t.Errorf("issuer %q, want the tenant's of cluster domain corp.example", tn.signer.issuer)
			}
		})
	}
	_, otherKey := testSigningKey(t)
	if fingerprintOf(kubeconfig, tenantPKI{saKey: keyPEM}) == fingerprintOf(kubeconfig, tenantPKI{saKey: otherKey}) ||
		fingerprintOf(kubeconfig, tenantPKI{saKey: keyPEM}) == fingerprintOf(kubeconfig, tenantPKI{}) {
		t.Error("a tenant served with one key would go on with it after the key changed")
	}
}

// BenchmarkTokenSignerIssue is the syncer's CPU for one token, against the ~2 ms a tenant
// apiserver spends on a TokenRequest (apiserver BenchmarkRequestCPU):
// go test ./syncer -run '^$' -bench TokenSignerIssue
func BenchmarkTokenSignerIssue(b *testing.B) {
	_, keyPEM := testSigningKey(b)
	signer, err := newTokenSigner(layout.ServiceAccountIssuer(layout.DefaultClusterDomain), keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "default", UID: "uid-sa"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid-web"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "vm", UID: "uid-vm"}}
	spec := authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3607)}
	for b.Loop() {
		if _, _, err := signer.issue(b.Context(), sa, pod, node, spec, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
