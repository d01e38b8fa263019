package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"

	"github.com/vnest-dev/vnest/internal/ownership"
	"github.com/vnest-dev/vnest/syncer/mapping"
)

// Service-account tokens of tenant pods.
//
// A tenant pod that mounts its service-account token (the kube-api-access-* projected volume the
// tenant's admission adds) gets, in the super cluster, the same files from a Secret the syncer
// keeps: `token`, a token of the TENANT apiserver for the pod's tenant service account, as the
// tenant's TokenRequest API issues it (signed by the syncer with the tenant's key, podtokensign.go,
// or requested from that API) with the audience and lifetime of the pod's projected
// volume and bound to the tenant pod (it stops working when the pod is deleted); `ca.crt`, the
// tenant's root CA (the tenant's kube-root-ca.crt ConfigMap); `namespace`, the tenant namespace.
// The syncer renews the token once 80% of its lifetime has passed (the kubelet refreshes the
// mounted files within a minute or so), so no long-lived token exists. The super cluster's own
// token is never mounted (automountServiceAccountToken: false on every super pod).
//
// The same Secret holds the pod's labels and annotations files when the pod reads them as a
// whole through the downward API (podmeta.go); a pod that mounts no token but reads them gets
// the Secret with those files only.
//
// A kubelet's token names the node its pod runs on (the node-name and node-uid claims a
// TokenReview reports as extra); the tenant's TokenRequest API adds them for a pod bound to a
// node. A new pod's tokens are requested before the super cluster schedules it, so they lack
// them: once the tenant pod is bound to its virtual node, the syncer requests the tokens again
// (annotationTokenNode records the node they name) before it copies any status up; a refused
// request is retried and does not hold the status back. A refusal the pod's owner can fix (its
// service account is gone) gets the tenant pod a FailedMount event, as a kubelet's would. The
// kubelet mounts the new tokens at its next sync of the pod, the one that sees the containers
// started at the latest, so the tenant sees the pod Running with them in place (or within a sync
// period when the syncer is far behind).
//
// The Secret is named tokenSecretName(pod) in the pod's super namespace, carries the pod's
// ownership labels plus labelPodToken=<pod name> (shortened past 63 characters, the limit of a
// label value; annotationPodToken always has the whole name), and is deleted with the super pod. Its events
// queue the pod, not a tenant Secret, and the Secret down sync leaves it alone.

const (
	// labelPodToken marks a token Secret and names the tenant pod it serves.
	labelPodToken = ownership.ReservedPrefix + "pod-token"
	// annotationPodToken names the tenant pod in full (pod names may be longer than a label value).
	annotationPodToken = ownership.ReservedPrefix + "pod-token"
	// annotationTokenExpires and annotationTokenIssued bound the current token's lifetime (RFC 3339).
	annotationTokenExpires = ownership.ReservedPrefix + "token-expires"
	annotationTokenIssued  = ownership.ReservedPrefix + "token-issued"
	// annotationTokenNode names the tenant node the pod was bound to when its tokens were
	// requested; absent when it was not yet bound, and the tokens name no node.
	annotationTokenNode = ownership.ReservedPrefix + "token-node"
	// tokenSecretPrefix starts the name of every token Secret; tenant Secrets of such names are
	// not synced.
	tokenSecretPrefix = "vnest-token-"
	// reasonFailedMount is the reason of the event a tenant pod gets when the tenant refuses its
	// token, the kubelet's reason for a volume it cannot set up.
	reasonFailedMount = "FailedMount"
	// renewAt is the part of a token's lifetime after which it is renewed.
	renewAt = 0.8
)

// tokenSecretName is the super Secret holding the tenant token of tenant pod name: the prefix
// plus the name, or a hash-truncated name when that would be longer than a Secret name may be.
// A cut that ends in '.' loses it ("x.-<hash>" is no DNS subdomain); one that ends in '-' keeps
// it ("x--<hash>" is valid, and running super pods mount their Secret by that name).
func tokenSecretName(pod string) string {
	name := tokenSecretPrefix + pod
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(pod))
	return strings.TrimRight(name[:253-11], ".") + "-" + hex.EncodeToString(sum[:])[:10]
}

// podTokenLabelValue is the labelPodToken value for a pod: its name, or, past the 63 characters
// a label value may have, a prefix of it and a hash of the whole.
func podTokenLabelValue(pod string) string {
	if len(pod) <= validation.LabelValueMaxLength {
		return pod
	}
	sum := sha256.Sum256([]byte(pod))
	return strings.TrimRight(pod[:validation.LabelValueMaxLength-11], "-_.") + "-" + hex.EncodeToString(sum[:])[:10]
}

// isTokenSecret reports whether a super object is a pod token Secret, and for which pod.
func isTokenSecret(m metav1.Object) (pod string, ok bool) {
	label, ok := m.GetLabels()[labelPodToken]
	if !ok {
		return "", false
	}
	if pod, ok := m.GetAnnotations()[annotationPodToken]; ok {
		return pod, true
	}
	return label, true // a Secret written before the annotation existed (short names only)
}

func isTokenSecretObj(m metav1.Object) bool {
	_, ok := isTokenSecret(m)
	return ok
}

// tokenVolumeSource is what a tenant kube-api-access volume becomes in the super pod: the same
// three files, from the pod's token Secret.
func tokenVolumeSource(podName string, v *corev1.ProjectedVolumeSource) corev1.VolumeSource {
	return corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: v.DefaultMode,
		Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: tokenSecretName(podName)},
			Items: []corev1.KeyToPath{
				{Key: "token", Path: "token"}, {Key: "ca.crt", Path: "ca.crt"}, {Key: "namespace", Path: "namespace"},
			},
		}}},
	}}
}

// tokenSource is one service-account token a tenant pod projects: the key of the token in the
// pod's token Secret and the TokenRequest that fills it.
type tokenSource struct {
	key    string
	volume string // the tenant pod's volume that projects it
	req    *authenticationv1.TokenRequest
}

// tokenKey is the token Secret key of the n-th service-account token source of projected volume
// v: "token" for the kube-api-access volume the tenant's admission adds, "token.<volume>.<n>"
// for any other (a volume name is a DNS label, so the key is a valid Secret key).
func tokenKey(v corev1.Volume, n int) string {
	if isServiceAccountTokenVolume(v) {
		return "token"
	}
	return fmt.Sprintf("token.%s.%d", v.Name, n)
}

// tokenSourcesOf lists the service-account tokens tenant pod p projects, each to be requested
// with the audience and lifetime its source asks for, bound to the pod. The kube-api-access
// volume has one.
func tokenSourcesOf(p *corev1.Pod) []tokenSource {
	var out []tokenSource
	for _, v := range p.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		n := 0
		for _, src := range v.Projected.Sources {
			if src.ServiceAccountToken == nil {
				continue
			}
			spec := authenticationv1.TokenRequestSpec{
				ExpirationSeconds: src.ServiceAccountToken.ExpirationSeconds,
				BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
			}
			if a := src.ServiceAccountToken.Audience; a != "" {
				spec.Audiences = []string{a}
			}
			out = append(out, tokenSource{key: tokenKey(v, n), volume: v.Name, req: &authenticationv1.TokenRequest{Spec: spec}})
			if isServiceAccountTokenVolume(v) {
				break
			}
			n++
		}
	}
	return out
}

// projectTenantTokens makes every service-account token a translated pod spec projects a token
// of the TENANT apiserver, from the pod's token Secret: the kube-api-access volume as a whole
// (tokenVolumeSource), any other token source as the Secret item of its key (tokenKey) at its
// path. A token source left as it is would have the super kubelet mount a token of the SUPER
// cluster's service account. In a volume with a token, the cluster's CA (the kube-root-ca.crt
// ConfigMap, which clients of the token verify the apiserver with) becomes the tenant's, the
// Secret's ca.crt: the super namespace's ConfigMap of that name holds the super cluster's CA.
func projectTenantTokens(spec *corev1.PodSpec, podName string) {
	secret := corev1.LocalObjectReference{Name: tokenSecretName(podName)}
	for i, v := range spec.Volumes {
		switch {
		case isServiceAccountTokenVolume(v):
			spec.Volumes[i].VolumeSource = tokenVolumeSource(podName, v.Projected)
		case v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(src corev1.VolumeProjection) bool { return src.ServiceAccountToken != nil }):
			n := 0
			for j, src := range v.Projected.Sources {
				switch {
				case src.ServiceAccountToken != nil:
					v.Projected.Sources[j] = corev1.VolumeProjection{Secret: &corev1.SecretProjection{
						LocalObjectReference: secret,
						Items:                []corev1.KeyToPath{{Key: tokenKey(v, n), Path: src.ServiceAccountToken.Path}},
					}}
					n++
				case src.ConfigMap != nil && src.ConfigMap.Name == rootCAConfigMap:
					items := src.ConfigMap.Items
					if len(items) == 0 { // the whole ConfigMap: its one key
						items = []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}
					}
					v.Projected.Sources[j] = corev1.VolumeProjection{Secret: &corev1.SecretProjection{
						LocalObjectReference: secret, Items: items, Optional: src.ConfigMap.Optional,
					}}
				}
			}
		}
	}
}

// tokenDue reports whether the token in secret should be renewed at now, and when it will be.
func tokenDue(secret *corev1.Secret, now time.Time) (due bool, at time.Time) {
	issued, err1 := time.Parse(time.RFC3339, secret.Annotations[annotationTokenIssued])
	expires, err2 := time.Parse(time.RFC3339, secret.Annotations[annotationTokenExpires])
	if err1 != nil || err2 != nil || !expires.After(issued) {
		return true, now
	}
	at = issued.Add(time.Duration(float64(expires.Sub(issued)) * renewAt))
	return !now.Before(at), at
}

// ensurePodToken creates or renews the Secret of tenant pod tp when it mounts a token or reads
// its labels or annotations as a whole (podmeta.go), and queues the pod again for the next
// renewal. A token that is still good is kept when only the metadata files change.
func (s *Syncer) ensurePodToken(ctx context.Context, t *tenant, tp *corev1.Pod) error {
	write, err := s.preparePodToken(ctx, t, tp, true)
	if err != nil || write == nil {
		return err
	}
	return write(ctx)
}

// preparePodToken is ensurePodToken up to the write of the Secret: it reads, requests the
// tenant's tokens and returns the write, or nil when the Secret is as it should be.
// superPodExists says the super pod is there, and so most likely its Secret, written right after it:
// a Secret the cache lacks is then read live before a new token is requested, as the
// pod's informer often sees the pod before the Secret's informer sees the Secret.
func (s *Syncer) preparePodToken(ctx context.Context, t *tenant, tp *corev1.Pod, superPodExists bool) (write func(context.Context) error, err error) {
	sources := tokenSourcesOf(tp)
	needToken := len(sources) > 0
	meta := podMetaData(tp)
	if !needToken && meta == nil {
		return nil, nil
	}
	superNS := mapping.SuperNamespace(t.key, tp.Namespace)
	name := tokenSecretName(tp.Name)
	existing, hasSuper, err := s.tokenSecrets.get(superNS, name)
	if err != nil {
		return nil, err
	}
	if !hasSuper && superPodExists {
		if existing, err = s.super.CoreV1().Secrets(superNS).Get(ctx, name, metav1.GetOptions{}); err == nil {
			hasSuper = true
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading token Secret %s/%s: %w", superNS, name, err)
		}
	}
	requeue := func(secret *corev1.Secret) {
		if needToken {
			_, at := tokenDue(secret, s.now())
			s.queue.AddAfter(t.key, objKey{Kind: kindPod, Namespace: tp.Namespace, Name: tp.Name}, at.Sub(s.now()))
		}
	}
	var keep *corev1.Secret // holds a token that is still good
	if hasSuper {
		if guard(t, tp.Namespace, existing) != nil {
			return nil, fmt.Errorf("token Secret %s/%s exists and is not this tenant's", superNS, name)
		}
		if mapping.TenantUID(existing) == tp.UID {
			tokenGood := s.tokensGood(existing, tp, sources)
			if tokenGood && sameMeta(existing.Data, meta) {
				requeue(existing)
				return nil, nil
			}
			if tokenGood && needToken {
				keep = existing
			}
		}
	}
	secret := &corev1.Secret{
		ObjectMeta: mapping.SuperMeta(tp, t.owner),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	secret.Name = name
	secret.Labels = map[string]string{
		ownership.LabelClusterKey: secret.Labels[ownership.LabelClusterKey], ownership.LabelTenantNamespace: tp.Namespace, labelPodToken: podTokenLabelValue(tp.Name),
	}
	secret.Annotations[annotationPodToken] = tp.Name
	switch {
	case keep != nil:
		for _, k := range []string{"ca.crt", "namespace"} {
			secret.Data[k] = keep.Data[k]
		}
		for _, src := range sources {
			secret.Data[src.key] = keep.Data[src.key]
		}
		secret.Annotations[annotationTokenIssued] = keep.Annotations[annotationTokenIssued]
		secret.Annotations[annotationTokenExpires] = keep.Annotations[annotationTokenExpires]
	case needToken:
		ca, err := t.configMaps.ConfigMaps(tp.Namespace).Get(rootCAConfigMap)
		if err != nil || ca.Data["ca.crt"] == "" {
			return nil, fmt.Errorf("waiting for the tenant's %s/%s ConfigMap: %v", tp.Namespace, rootCAConfigMap, err)
		}
		sa := tp.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		secret.Data["ca.crt"], secret.Data["namespace"] = []byte(ca.Data["ca.crt"]), []byte(tp.Namespace)
		issued := s.now()
		var expires time.Time // the earliest: all tokens are renewed together
		for _, src := range sources {
			token, exp, err := t.token(ctx, tp, sa, src, issued)
			if err != nil {
				if tenantRefused(err) && t.recorder != nil {
					// What a kubelet says when it cannot fetch a pod's token; retried with back-off.
					t.recorder.Eventf(tp, corev1.EventTypeWarning, reasonFailedMount,
						"MountVolume.SetUp failed for volume %q : failed to fetch token: %v", src.volume, err)
				}
				return nil, fmt.Errorf("requesting a token for service account %s/%s: %w", tp.Namespace, sa, err)
			}
			secret.Data[src.key] = []byte(token)
			if expires.IsZero() || exp.Before(expires) {
				expires = exp
			}
		}
		secret.Annotations[annotationTokenIssued] = issued.UTC().Format(time.RFC3339)
		secret.Annotations[annotationTokenExpires] = expires.UTC().Format(time.RFC3339)
		klog.FromContext(ctx).V(2).Info("Tenant service-account tokens", "signed", t.signer != nil, "secret", klog.KRef(superNS, name), "tokens", len(sources), "expires", expires, "node", tp.Spec.NodeName)
	}
	if needToken && tp.Spec.NodeName != "" {
		// The tokens name this node: new ones were just requested for the bound pod, and kept
		// ones are good only when they name it.
		secret.Annotations[annotationTokenNode] = tp.Spec.NodeName
	}
	for k, v := range meta {
		secret.Data[k] = v
	}
	return func(ctx context.Context) error {
		w := s.super.CoreV1().Secrets(superNS)
		var written *corev1.Secret
		var err error
		if hasSuper {
			up := existing.DeepCopy()
			up.Labels, up.Annotations, up.Data, up.Type = secret.Labels, secret.Annotations, secret.Data, existing.Type
			written, err = w.Update(ctx, up, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				// Written meanwhile by someone else, or by this syncer in a write the read-back
				// no longer holds (before a restart, or pushed out by many others): when the
				// live Secret is still this pod's, what was just prepared goes over it, once,
				// unless it already holds good tokens and the same metadata.
				if live, gerr := w.Get(ctx, name, metav1.GetOptions{}); gerr == nil && guard(t, tp.Namespace, live) == nil && mapping.TenantUID(live) == tp.UID {
					if s.tokensGood(live, tp, sources) && sameMeta(live.Data, meta) {
						written, err = live, nil
					} else {
						up = live.DeepCopy()
						up.Labels, up.Annotations, up.Data = secret.Labels, secret.Annotations, secret.Data
						written, err = w.Update(ctx, up, metav1.UpdateOptions{})
					}
				}
			}
		} else {
			if err := s.ensureSuperNamespace(ctx, t, tp.Namespace); err != nil {
				return err
			}
			written, err = w.Create(ctx, secret, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("writing token Secret %s/%s: %w", superNS, name, err)
		}
		s.tokenSecrets.wrote(written) // read back at once, before the cache has it
		requeue(written)
		return nil
	}, nil
}

// tokenWriteTTL is how long the syncer reads its own write of a token Secret instead of the
// cache's older copy (Syncer.tokenSecrets); the cache catches up within moments.
const tokenWriteTTL = time.Minute

// tokensGood reports whether token Secret secret of tenant pod tp holds a token for each of
// sources that is not due for renewal and names the pod's node (none while it is unbound).
func (s *Syncer) tokensGood(secret *corev1.Secret, tp *corev1.Pod, sources []tokenSource) bool {
	if len(sources) == 0 {
		return true
	}
	due, _ := tokenDue(secret, s.now())
	return !due && secret.Annotations[annotationTokenNode] == tp.Spec.NodeName &&
		slices.IndexFunc(sources, func(src tokenSource) bool { return len(secret.Data[src.key]) == 0 }) < 0
}

// token is a token of source src for tenant pod tp, whose service account is sa, and when it
// expires: signed by the syncer when it has the tenant's key (podtokensign.go), else requested
// from the tenant's TokenRequest API. An error from either is the TokenRequest API's.
func (t *tenant) token(ctx context.Context, tp *corev1.Pod, sa string, src tokenSource, now time.Time) (string, time.Time, error) {
	if t.signer == nil {
		tr, err := t.client.CoreV1().ServiceAccounts(tp.Namespace).CreateToken(ctx, sa, src.req, metav1.CreateOptions{})
		if err != nil {
			return "", time.Time{}, err
		}
		return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
	}
	account, err := t.serviceAccounts.ServiceAccounts(tp.Namespace).Get(sa)
	if err != nil { // made moments ago, or gone: the tenant says which
		if account, err = t.client.CoreV1().ServiceAccounts(tp.Namespace).Get(ctx, sa, metav1.GetOptions{}); err != nil {
			return "", time.Time{}, err
		}
	}
	var node *corev1.Node
	if name := tp.Spec.NodeName; name != "" {
		if node, err = t.nodes.Get(name); err != nil {
			node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} // what the tenant's TokenRequest API names then
		}
	}
	return t.signer.issue(ctx, account, tp, node, src.req.Spec, now)
}

// tenantRefused reports whether the tenant's TokenRequest API refused a request for a reason
// the pod's owner can fix (its service account deleted, say), not a passing failure.
func tenantRefused(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
}

// deletePodToken deletes the token Secret of tenant pod name in tenant namespace ns, if any.
func (s *Syncer) deletePodToken(ctx context.Context, t *tenant, ns, name string) error {
	superNS := mapping.SuperNamespace(t.key, ns)
	existing, hasSuper, err := lookup(s.superSecrets.Secrets(superNS).Get(tokenSecretName(name)))
	if err != nil || !hasSuper {
		return err
	}
	if err := deleteSuper(ctx, t, s.super.CoreV1().Secrets(superNS), ns, existing, nil); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
