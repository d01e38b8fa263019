package syncer

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/kubernetes/pkg/apis/core"
	"k8s.io/kubernetes/pkg/serviceaccount"
)

// Tenant tokens signed by the syncer.
//
// A tenant's TokenRequest API reads the service account and the pod from etcd and signs a JWT
// with the tenant's service-account key: about 2 ms of the tenant's CPU, twice per pod (once
// before the pod is bound, once after). The syncer, which may already ask any tenant for any
// token with its admin credentials, reads the same key from the tenant's PKI Secret
// ("<name>-pki", key sa.key) and signs the same token itself: the claims come from upstream's
// serviceaccount.Claims and the JWT from its JWTTokenGenerator, the issuer and audience are
// the tenant's defaults (layout.ServiceAccountIssuer of spec.clusterDomain), and the service
// account and node are read from the syncer's caches of the tenant (the service account live
// when the cache lacks it). What the tenant's TokenRequest API would have done besides,
// and the syncer does not: run validating admission on the TokenRequest, and write it to the
// tenant's audit log. The tenant checks these tokens as its own (the pod, service account and
// node they name must exist with those UIDs) and they stop working when the pod is deleted.
// Without the key (a PKI Secret the syncer cannot read) the syncer asks the tenant's
// TokenRequest API, as before.

// tokenSigner signs one tenant's service-account tokens.
type tokenSigner struct {
	// issuer is also the tenant apiserver's one API audience, the default audience of a token.
	issuer string
	gen    serviceaccount.TokenGenerator
}

// newTokenSigner is the signer of the tenant whose tokens have issuer and whose
// service-account key (PEM) is keyPEM.
func newTokenSigner(issuer string, keyPEM []byte) (*tokenSigner, error) {
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing the service-account key: %w", err)
	}
	gen, err := serviceaccount.JWTTokenGenerator(issuer, key)
	if err != nil {
		return nil, err
	}
	return &tokenSigner{issuer: issuer, gen: gen}, nil
}

// issue is the token the tenant's TokenRequest API returns for service account sa, request
// spec (bound to pod) and node, the pod's tenant node (nil when the pod is not bound; a node
// with a name only when the tenant has none of that name), as of now; the tenant runs with
// --service-account-extend-token-expiration=false and no maximum lifetime.
func (g *tokenSigner) issue(ctx context.Context, sa *corev1.ServiceAccount, pod *corev1.Pod, node *corev1.Node, spec authenticationv1.TokenRequestSpec, now time.Time) (token string, expires time.Time, err error) {
	if pod.Spec.ServiceAccountName != "" && pod.Spec.ServiceAccountName != sa.Name {
		return "", time.Time{}, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", sa.Name))
	}
	seconds := int64(3600) // the TokenRequest API's default
	if spec.ExpirationSeconds != nil {
		seconds = *spec.ExpirationSeconds
	}
	if seconds < 10*60 || seconds > 1<<32 {
		return "", time.Time{}, apierrors.NewBadRequest(fmt.Sprintf("token lifetime of %d seconds: want 10 minutes to 2^32 seconds", seconds))
	}
	audiences := spec.Audiences
	if len(audiences) == 0 {
		audiences = []string{g.issuer}
	}
	internalSA := core.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa.Namespace, Name: sa.Name, UID: sa.UID}}
	internalPod := &core.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}}
	var internalNode *core.Node
	if node != nil {
		internalNode = &core.Node{ObjectMeta: metav1.ObjectMeta{Name: node.Name, UID: node.UID}}
	}
	claims, private, err := serviceaccount.Claims(internalSA, internalPod, nil, internalNode, seconds, 0, audiences)
	if err != nil {
		return "", time.Time{}, err
	}
	token, err = g.gen.GenerateToken(ctx, claims, private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing a token for service account %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	return token, now.Add(time.Duration(seconds) * time.Second), nil
}
