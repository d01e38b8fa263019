package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
// keeps: `token`, a token of the TENANT apiserver for the pod's tenant service account, requested
// through the tenant's TokenRequest API with the audience and lifetime of the pod's projected
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
	// tokenSecretPrefix starts the name of every token Secret; tenant Secrets of such names are
	// not synced.
	tokenSecretPrefix = "vnest-token-"
	// renewAt is the part of a token's lifetime after which it is renewed.
	renewAt = 0.8
)

// tokenSecretName is the super Secret holding the tenant token of tenant pod name: the prefix
// plus the name, or a hash-truncated name when that would be longer than a Secret name may be.
func tokenSecretName(pod string) string {
	name := tokenSecretPrefix + pod
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(pod))
	return name[:253-11] + "-" + hex.EncodeToString(sum[:])[:10]
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

// tokenRequestOf is the TokenRequest for tenant pod p's projected token source: audience and
// lifetime as the volume asks, bound to the pod. ok is false when p mounts no token.
func tokenRequestOf(p *corev1.Pod) (req *authenticationv1.TokenRequest, ok bool) {
	for _, v := range p.Spec.Volumes {
		if !isServiceAccountTokenVolume(v) {
			continue
		}
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
			return &authenticationv1.TokenRequest{Spec: spec}, true
		}
	}
	return nil, false
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
	req, needToken := tokenRequestOf(tp)
	meta := podMetaData(tp)
	if !needToken && meta == nil {
		return nil
	}
	superNS := mapping.SuperNamespace(t.key, tp.Namespace)
	name := tokenSecretName(tp.Name)
	existing, hasSuper, err := lookup(s.superSecrets.Secrets(superNS).Get(name))
	if err != nil {
		return err
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
			return fmt.Errorf("token Secret %s/%s exists and is not this tenant's", superNS, name)
		}
		if mapping.TenantUID(existing) == tp.UID {
			tokenGood := !needToken
			if needToken {
				due, _ := tokenDue(existing, s.now())
				tokenGood = !due && len(existing.Data["token"]) > 0
			}
			if tokenGood && sameMeta(existing.Data, meta) {
				requeue(existing)
				return nil
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
		for _, k := range []string{"token", "ca.crt", "namespace"} {
			secret.Data[k] = keep.Data[k]
		}
		secret.Annotations[annotationTokenIssued] = keep.Annotations[annotationTokenIssued]
		secret.Annotations[annotationTokenExpires] = keep.Annotations[annotationTokenExpires]
	case needToken:
		ca, err := t.configMaps.ConfigMaps(tp.Namespace).Get(rootCAConfigMap)
		if err != nil || ca.Data["ca.crt"] == "" {
			return fmt.Errorf("waiting for the tenant's %s/%s ConfigMap: %v", tp.Namespace, rootCAConfigMap, err)
		}
		sa := tp.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		tr, err := t.client.CoreV1().ServiceAccounts(tp.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("requesting a token for service account %s/%s: %w", tp.Namespace, sa, err)
		}
		secret.Data["token"], secret.Data["ca.crt"], secret.Data["namespace"] = []byte(tr.Status.Token), []byte(ca.Data["ca.crt"]), []byte(tp.Namespace)
		secret.Annotations[annotationTokenIssued] = s.now().UTC().Format(time.RFC3339)
		secret.Annotations[annotationTokenExpires] = tr.Status.ExpirationTimestamp.UTC().Format(time.RFC3339)
		klog.FromContext(ctx).V(2).Info("Requested a tenant service-account token", "secret", klog.KRef(superNS, name), "expires", tr.Status.ExpirationTimestamp)
	}
	for k, v := range meta {
		secret.Data[k] = v
	}
	w := s.super.CoreV1().Secrets(superNS)
	if hasSuper {
		up := existing.DeepCopy()
		up.Labels, up.Annotations, up.Data, up.Type = secret.Labels, secret.Annotations, secret.Data, existing.Type
		_, err = w.Update(ctx, up, metav1.UpdateOptions{})
	} else {
		if err := s.ensureSuperNamespace(ctx, t, tp.Namespace); err != nil {
			return err
		}
		_, err = w.Create(ctx, secret, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing token Secret %s/%s: %w", superNS, name, err)
	}
	requeue(secret)
	return nil
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
