package syncer

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/vnest-dev/vnest/api/v1alpha1"
	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

func TestTokenSecretName(t *testing.T) {
	// cut names a pod whose token Secret name is cut (past 253 characters) right after
	// character c: the prefix and the first 230 characters of the name are kept.
	cut := func(c string) string { return strings.Repeat("a", 229) + c + strings.Repeat("b", 20) }
	for _, tc := range []struct {
		name, pod, want string // want "" for a hash-truncated name
	}{
		{name: "short name", pod: "web", want: "vnest-token-web"},
		{name: "longest kept whole", pod: strings.Repeat("a", 241), want: tokenSecretPrefix + strings.Repeat("a", 241)},
		{name: "too long", pod: strings.Repeat("a", 250)},
		{name: "cut at a dot", pod: cut(".")},
		{name: "cut at a hyphen", pod: cut("-")},
		{name: "longest pod name, cut at a dot", pod: strings.Repeat("a", 229) + "." + strings.Repeat("b", 23)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tokenSecretName(tc.pod)
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("tokenSecretName = %q: %v", got, errs)
			}
			if tc.want != "" {
				if got != tc.want {
					t.Errorf("tokenSecretName = %q, want %q", got, tc.want)
				}
				return
			}
			if !strings.HasPrefix(got, tokenSecretPrefix+tc.pod[:200]) || got != tokenSecretName(tc.pod) {
				t.Errorf("tokenSecretName = %q, want the prefix, the name's start and a hash, the same every time", got)
			}
			if other := tc.pod[:len(tc.pod)-1] + "x"; got == tokenSecretName(other) {
				t.Errorf("tokenSecretName = %q for %q too, want distinct names", got, other)
			}
		})
	}
	// A cut at '-' keeps the name it always had: super pods mount their Secret by name.
	if got, want := tokenSecretName(cut("-")), tokenSecretPrefix+strings.Repeat("a", 229)+"--"; !strings.HasPrefix(got, want) {
		t.Errorf("tokenSecretName = %q, want it to start %q", got, want)
	}
}

func TestTokenSourcesOf(t *testing.T) {
	withToken := MakePod("default", "web").Obj()
	v := tokenVolume()
	v.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds = ptr.To[int64](600)
	v.Projected.Sources[0].ServiceAccountToken.Audience = "vault"
	withToken.Spec.Volumes = []corev1.Volume{v, oidcTokenVolume()}
	bound := &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web", UID: "uid-web"}
	want := []tokenSource{
		{key: "token", volume: "kube-api-access-abcde", req: &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{"vault"}, ExpirationSeconds: ptr.To[int64](600), BoundObjectRef: bound}}},
		{key: "token.oidc.0", volume: "oidc", req: &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{"oidc-discovery-test"}, ExpirationSeconds: ptr.To[int64](3600), BoundObjectRef: bound}}},
		{key: "token.oidc.1", volume: "oidc", req: &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: bound}}},
	}
	if diff := cmp.Diff(want, tokenSourcesOf(withToken), cmp.AllowUnexported(tokenSource{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := tokenSourcesOf(MakePod("default", "web").Obj()); len(got) > 0 {
		t.Errorf("requests %v for a pod without a token volume", got)
	}
}

// oidcTokenVolume is a projected volume of the pod's own making with two service-account tokens
// (one with an audience, as the conformance suite's OIDC discovery test has), a ConfigMap, and
// the cluster's CA twice (one item picked, and the whole ConfigMap).
func oidcTokenVolume() corev1.Volume {
	rootCA := corev1.LocalObjectReference{Name: rootCAConfigMap}
	return corev1.Volume{Name: "oidc", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "sa/token", Audience: "oidc-discovery-test", ExpirationSeconds: ptr.To[int64](3600)}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "other"}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: rootCA, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "sa/ca.crt", Mode: ptr.To[int32](0o400)}}}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: rootCA, Optional: ptr.To(true)}},
	}}}}
}

// TestEveryProjectedTokenIsTheTenants: no service-account token source reaches the super pod
// (the super kubelet would mount a SUPER cluster token there); each becomes an item of the
// pod's token Secret at its path, and the Secret holds a tenant token for each.
func TestEveryProjectedTokenIsTheTenants(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume(), oidcTokenVolume()}
	sp := translatePod(pod, testOwner, v1alpha1.PolicySpec{}, nil)
	for _, v := range sp.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.ServiceAccountToken != nil {
				t.Errorf("volume %s projects a service-account token into the super pod: %+v", v.Name, src.ServiceAccountToken)
			}
		}
	}
	oidc := sp.Spec.Volumes[1].Projected.Sources
	wantOIDC := []corev1.VolumeProjection{
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"}, Items: []corev1.KeyToPath{{Key: "token.oidc.0", Path: "sa/token"}}}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"}, Items: []corev1.KeyToPath{{Key: "token.oidc.1", Path: "other"}}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "sa/ca.crt", Mode: ptr.To[int32](0o400)}}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "vnest-token-web"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}, Optional: ptr.To(true)}},
	}
	if diff := cmp.Diff(wantOIDC, oidc); diff != "" {
		t.Errorf("oidc volume (-want +got):\n%s", diff)
	}

	h := newTokenHarness(t, pod)
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	sec, err := h.super.CoreV1().Secrets(testSuperNS).Get(ctx, "vnest-token-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"token": "tenant-token-for-", "token.oidc.0": "tenant-token-for-oidc-discovery-test", "token.oidc.1": "tenant-token-for-"} {
		if got := string(sec.Data[k]); got != want {
			t.Errorf("token Secret %s = %q, want %q", k, got, want)
		}
	}
}

func TestTokenDue(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		annotationTokenIssued: issued.Format(time.RFC3339), annotationTokenExpires: issued.Add(time.Hour).Format(time.RFC3339),
	}}}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{{issued.Add(47 * time.Minute), false}, {issued.Add(48 * time.Minute), true}, {issued.Add(2 * time.Hour), true}} {
		due, at := tokenDue(s, tc.now)
		if due != tc.want || !at.Equal(issued.Add(48*time.Minute)) {
			t.Errorf("at %v: due %v at %v, want %v at +48m", tc.now, due, at, tc.want)
		}
	}
	if due, _ := tokenDue(&corev1.Secret{}, issued); !due {
		t.Error("a Secret without annotations is not due")
	}
}

// TestPodTokenSecret: a pod that mounts its token gets a super Secret with a tenant token bound
// to the pod, the tenant CA and namespace, stamped with the pod's ownership; the Secret down
// sync and the patrol take it for the pod's, not for an orphaned tenant Secret.
func TestPodTokenSecret(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.ServiceAccountName = "builder"
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	rootCA := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "TENANT CA"}}
	ns := superDefaultNS.DeepCopy()
	h := newHarness(t, []object{ns}, []object{pod, rootCA})
	var asked *authenticationv1.TokenRequest
	h.tenantCS.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		asked = a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		if name := a.(k8stesting.CreateActionImpl).Name; name != "builder" {
			t.Errorf("token requested for service account %q", name)
		}
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{
			Token: "tenant-token", ExpirationTimestamp: metav1.NewTime(time.Now().Add(time.Hour)),
		}}, nil
	})
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	if asked == nil || asked.Spec.BoundObjectRef == nil || asked.Spec.BoundObjectRef.UID != "uid-web" {
		t.Fatalf("token request %+v, want one bound to the pod", asked)
	}
	sec, err := h.super.CoreV1().Secrets(testSuperNS).Get(ctx, "vnest-token-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantData := map[string]string{"token": "tenant-token", "ca.crt": "TENANT CA", "namespace": "default"}
	for k, v := range wantData {
		if string(sec.Data[k]) != v {
			t.Errorf("data[%s] = %q, want %q", k, sec.Data[k], v)
		}
	}
	if sec.Labels[ownership.LabelClusterKey] != testKey || sec.Labels[labelPodToken] != "web" || sec.Annotations[ownership.AnnotationTenantUID] != "uid-web" {
		t.Errorf("token Secret meta %v %v", sec.Labels, sec.Annotations)
	}
	if _, err := h.super.CoreV1().Pods(testSuperNS).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("super pod not created: %v", err)
	}

	// The Secret side: no tenant Secret of that name, yet nothing deletes the token Secret.
	if err := h.s.superIndex[kindSecret].Add(sec); err != nil {
		t.Fatal(err)
	}
	h.super.ClearActions()
	if err := h.s.syncSecret(ctx, h.t, "default", "vnest-token-web"); err != nil {
		t.Fatal(err)
	}
	if w := writes(h.super); len(w) > 0 {
		t.Errorf("the Secret sync wrote %v", w)
	}
	if key, ok := superKey(kindSecret, sec, testKey); !ok || key != (objKey{Kind: kindPod, Namespace: "default", Name: "web"}) {
		t.Errorf("patrol key of the token Secret = %v, want the pod's", key)
	}

	// The tenant pod goes, then its super pod: the token Secret goes too.
	if err := h.t.index[kindPod].Delete(pod); err != nil {
		t.Fatal(err)
	}
	h.super.ClearActions()
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"delete secrets " + testSuperNS + "/vnest-token-web"}, writes(h.super)); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
}

// TestPodSecretMetadata: a pod that reads its labels as a whole gets them from its Secret,
// rendered from the tenant pod (no vnest keys); a label change rewrites them and keeps the
// token, which is still good.
func TestPodSecretMetadata(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Labels = map[string]string{"app": "web"}
	pod.Spec.Volumes = []corev1.Volume{tokenVolume(), {Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}}},
	}}}}
	rootCA := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "TENANT CA"}}
	ns := superDefaultNS.DeepCopy()
	h := newHarness(t, []object{ns}, []object{pod, rootCA})
	requests := 0
	h.tenantCS.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		requests++
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{
			Token: "tenant-token", ExpirationTimestamp: metav1.NewTime(time.Now().Add(time.Hour)),
		}}, nil
	})
	ctx := testContext(t)
	secretAfterSync := func() *corev1.Secret {
		t.Helper()
		if err := h.s.syncPod(ctx, h.t, "default", "web"); err != nil {
			t.Fatal(err)
		}
		return h.cacheWritten(ctx, t, kindSecret, "vnest-token-web").(*corev1.Secret)
	}
	sec := secretAfterSync()
	if got := string(sec.Data["metadata.labels"]); got != `app="web"` || string(sec.Data["token"]) != "tenant-token" {
		t.Fatalf("Secret data: labels %q, token %q; want the tenant labels and the token", got, sec.Data["token"])
	}
	sp := h.cacheWritten(ctx, t, kindPod, "web").(*corev1.Pod)
	if sp.Spec.Volumes[1].Projected == nil || sp.Spec.Volumes[1].Projected.Sources[0].Secret == nil {
		t.Fatalf("super pod volume %+v, want the labels from the pod Secret", sp.Spec.Volumes[1].VolumeSource)
	}

	changed := pod.DeepCopy()
	changed.Labels["version"] = "2"
	if err := h.t.index[kindPod].Update(changed); err != nil {
		t.Fatal(err)
	}
	sec = secretAfterSync()
	if got := string(sec.Data["metadata.labels"]); got != "app=\"web\"\nversion=\"2\"" {
		t.Errorf("labels after the change: %q", got)
	}
	if requests != 1 || string(sec.Data["token"]) != "tenant-token" {
		t.Errorf("%d token requests, token %q: want the first token kept", requests, sec.Data["token"])
	}
}

// TestTokenSecretOfLongPodName: pod names may be longer than a label value (the conformance
// suite's termination-message pods have 65 characters); the token Secret's labels must still be
// valid, and the Secret must still lead back to its pod.
func TestTokenSecretOfLongPodName(t *testing.T) {
	long := "termination-message-container" + "0a1b2c3d-1111-2222-3333-444455556666"
	for _, tc := range []struct {
		pod, wantLabel string
	}{
		{"web", "web"},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{long, ""}, // hashed
		{strings.Repeat("b", 52) + "-.-" + strings.Repeat("c", 20), ""},
	} {
		got := podTokenLabelValue(tc.pod)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("podTokenLabelValue(%q) = %q: %v", tc.pod, got, errs)
		}
		if tc.wantLabel != "" && got != tc.wantLabel {
			t.Errorf("podTokenLabelValue(%q) = %q, want %q", tc.pod, got, tc.wantLabel)
		}
		if tc.wantLabel == "" && (got == podTokenLabelValue(tc.pod+"x") || !strings.HasPrefix(tc.pod, strings.TrimRight(got[:20], "-"))) {
			t.Errorf("podTokenLabelValue(%q) = %q, want a prefix of the name and a hash of the whole", tc.pod, got)
		}
	}

	pod := MakePod("default", long).Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h := newTokenHarness(t, pod)
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", long); err != nil {
		t.Fatal(err)
	}
	sec, err := h.super.CoreV1().Secrets(testSuperNS).Get(ctx, tokenSecretName(long), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := metav1validation.ValidateLabels(sec.Labels, field.NewPath("metadata", "labels")); len(errs) > 0 {
		t.Errorf("token Secret labels invalid: %v", errs.ToAggregate())
	}
	if got, ok := isTokenSecret(sec); !ok || got != long {
		t.Errorf("isTokenSecret = %q, %v; want the whole pod name", got, ok)
	}
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{labelPodToken: "web"}}}
	if got, ok := isTokenSecret(old); !ok || got != "web" {
		t.Errorf("isTokenSecret of a Secret without the annotation = %q, %v; want web from the label", got, ok)
	}
}

// TestTokenSecretRefused: when the super cluster refuses the pod's token Secret, the tenant pod
// gets a Warning event saying so instead of waiting without a word, and the refusal is returned
// (retried). The pod is written first and its token Secret right after, so the super pod exists:
// it waits for its Secret, and the status coming up from it stays the tenant pod's status.
func TestTokenSecretRefused(t *testing.T) {
	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h := newTokenHarness(t, pod)
	h.super.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Secret").GroupKind(), "vnest-token-web",
			field.ErrorList{field.Invalid(field.NewPath("metadata", "labels"), "x", "must be no more than 63 bytes")})
	})
	ctx := testContext(t)
	if err := h.s.syncPod(ctx, h.t, "default", "web"); err == nil || !strings.Contains(err.Error(), "63 bytes") {
		t.Fatalf("syncPod = %v; want the refusal returned (and retried)", err)
	}
	if _, err := h.super.CoreV1().Pods(mapping.SuperNamespace(h.t.key, "default")).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("super pod: %v; want it created alongside the refused Secret", err)
	}
	select {
	case e := <-h.recorder.Events:
		if !strings.Contains(e, v1alpha1.PodReasonSuperRejected) || !strings.Contains(e, "token Secret") || !strings.Contains(e, "63 bytes") {
			t.Errorf("event %q, want %s about the token Secret with the super cluster's message", e, v1alpha1.PodReasonSuperRejected)
		}
	default:
		t.Error("no event recorded")
	}
}

// TestPodCreatedBeforeItsTokenSecret: a new pod's super pod is created first, alone, and its
// token Secret after it, so the super apiserver serves the pod's create (the latency a tenant
// sees) without the Secret's beside it. When the pod's create fails, no Secret is written: the
// next round writes both.
func TestPodCreatedBeforeItsTokenSecret(t *testing.T) {
	creates := func(h *harness) []string {
		var out []string
		for _, a := range h.super.Actions() {
			if a.GetVerb() == "create" && (a.GetResource().Resource == "pods" || a.GetResource().Resource == "secrets") {
				out = append(out, a.GetResource().Resource)
			}
		}
		return out
	}
	h, _ := newTokenPodSynced(t)
	if got := creates(h); !slices.Equal(got, []string{"pods", "secrets"}) {
		t.Errorf("super creates %v, want [pods secrets]: the pod alone first", got)
	}

	pod := MakePod("default", "web").Obj()
	pod.Spec.Volumes = []corev1.Volume{tokenVolume()}
	h = newTokenHarness(t, pod)
	h.super.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("try again")
	})
	if err := h.s.syncPod(testContext(t), h.t, "default", "web"); err == nil {
		t.Fatal("syncPod = nil with the pod's create failing; want the error (retried)")
	}
	if got := creates(h); !slices.Equal(got, []string{"pods"}) {
		t.Errorf("super creates %v with the pod's create failing, want [pods]: no Secret without its pod", got)
	}
}

// newTokenHarness is a harness with tenant pod pod, its namespace's root CA, and a tenant
// TokenRequest API that answers "tenant-token-for-<audiences>", valid for an hour.
func newTokenHarness(t *testing.T, pod *corev1.Pod) *harness {
	t.Helper()
	rootCA := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "TENANT CA"}}
	ns := superDefaultNS.DeepCopy()
	h := newHarness(t, []object{ns}, []object{pod, rootCA})
	h.tenantCS.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		req := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{
			Token: "tenant-token-for-" + strings.Join(req.Spec.Audiences, ","), ExpirationTimestamp: metav1.NewTime(time.Now().Add(time.Hour)),
		}}, nil
	})
	return h
}
