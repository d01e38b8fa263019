package securemetrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/token/cache"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/util/webhook"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/vnest-dev/vnest/internal/logevery"
)

// The reviews' timeout, retries and caches are those of controller-runtime's
// filters.WithAuthenticationAndAuthorization.
const (
	reviewTimeout = 10 * time.Second
	tokenCacheTTL = time.Minute // the answer, authenticated or not; a failure to ask is not kept
	allowCacheTTL = 5 * time.Minute
	denyCacheTTL  = 30 * time.Second
)

// Reviews of tokens the cache does not hold are limited to reviewRate a second, reviewBurst at
// once, for the whole server (tests lower them). Anyone who reaches the address, a tenant pod
// say, could otherwise send a new forged token with each request and have each reviewed: one
// TokenReview each at the super cluster, in the syncer's or the manager's own flow of its
// priority and fairness, whose throttling would slow their work for every tenant. A scraper's
// token is reviewed once per tokenCacheTTL, far below the rate; while a flood goes on, one whose
// answer has expired is refused with the rest until it gets a review.
var (
	reviewRate  rate.Limit = 10
	reviewBurst            = 20
)

// errTooManyReviews is a token not reviewed because reviewRate was reached: 429 Too Many
// Requests, as the super cluster would answer a client past its limits.
var errTooManyReviews = errors.New("too many tokens to review")

// refusedLogEvery is how often, at most, the filter logs that it refuses tokens past the rate.
const refusedLogEvery = time.Minute

func reviewBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// authFilter is the secure address's check: a request goes through only when the super
// cluster (config) authenticates its bearer token (TokenReview) and authorizes its user to get
// the path (SubjectAccessReview), as with controller-runtime's
// filters.WithAuthenticationAndAuthorization, whose clients, timeouts, retries, caches and
// answers it keeps but for a token the super cluster does not authenticate: 401, as from
// kube-apiserver, logged at V(4). That filter answers it 500 and logs an error, so anyone who
// reached the address could fill the logs: its token authenticator, k8s.io/apiserver's bearer
// token one, makes every token that does not authenticate an error ("invalid bearer token"),
// the TokenReview webhook under it makes the review's status.error one (kube-apiserver sets it
// for every token it rejects), and the filter answers any error 500. Here an error is a review
// that could not be made, still 500 and an error, or a client gone.
func authFilter(config *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authenticationv1client.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, err
	}
	authz, err := authorizationv1client.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, err
	}
	az, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: authz,
		AllowCacheTTL:             allowCacheTTL,
		DenyCacheTTL:              denyCacheTTL,
		WebhookRetryBackoff:       reviewBackoff(),
	}.New()
	if err != nil {
		return nil, fmt.Errorf("the authorizer: %w", err)
	}
	reviewer := limitedReviewer{tokenReviewer{authn.RESTClient()}, rate.NewLimiter(reviewRate, reviewBurst)}
	tokens := cache.New(reviewer, false, tokenCacheTTL, tokenCacheTTL)
	f := &reviewFilter{
		authenticator: group.NewAuthenticatedGroupAdder(authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
			token := bearerToken(req)
			if token == "" {
				return nil, false, nil
			}
			res, ok, err := tokens.AuthenticateToken(req.Context(), token)
			if ok { // as k8s.io/apiserver's: no handler is tempted to use it
				req.Header.Del("Authorization")
			}
			return res, ok, err
		})),
		authorizer:    az,
		refusedLogged: logevery.New(refusedLogEvery),
	}
	return f.wrap, nil
}

type reviewFilter struct {
	authenticator authenticator.Request
	authorizer    authorizer.Authorizer
	// refusedLogged lets a refusal past reviewRate be logged once per refusedLogEvery.
	refusedLogged *logevery.Every
}

// wrap lets a request through to next when its user may get its path, else answers 401, 403, or
// 500 when the super cluster cannot be asked.
func (f *reviewFilter) wrap(log logr.Logger, next http.Handler) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		log := log.WithValues("path", req.URL.Path, "remote", req.RemoteAddr)
		res, ok, err := f.authenticator.AuthenticateRequest(req)
		switch {
		case err != nil && req.Context().Err() != nil:
			// The client went away while its token was reviewed: no one to answer, and
			// not the super cluster's failure.
			log.V(4).Info("Metrics request gone during its authentication")
			return
		case errors.Is(err, errTooManyReviews):
			if f.refusedLogged.Allow(time.Now()) {
				log.Info("Refusing metrics requests whose token is not known yet: more to review than the limit (a flood of forged tokens?); logged once a minute", "limit", float64(reviewRate), "burst", reviewBurst)
			} else {
				log.V(4).Info("Metrics request refused: too many tokens to review")
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Too many tokens to review; try again later", http.StatusTooManyRequests)
			return
		case err != nil:
			log.Error(err, "Cannot authenticate a metrics request")
			http.Error(w, "Authentication failed", http.StatusInternalServerError)
			return
		case !ok:
			log.V(4).Info("Metrics request unauthenticated")
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := authorizer.AttributesRecord{User: res.User, Verb: strings.ToLower(req.Method), Path: req.URL.Path}
		decision, reason, err := f.authorizer.Authorize(req.Context(), attrs)
		name := res.User.GetName()
		switch {
		case err != nil && req.Context().Err() != nil:
			log.V(4).Info("Metrics request gone during its authorization", "user", name)
			return
		case err != nil:
			log.Error(err, "Cannot authorize a metrics request", "user", name)
			http.Error(w, fmt.Sprintf("Authorization for user %s failed", name), http.StatusInternalServerError)
			return
		case decision != authorizer.DecisionAllow:
			log.V(4).Info("Metrics request forbidden", "user", name, "reason", reason)
			http.Error(w, fmt.Sprintf("Authorization denied for user %s", name), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, req)
	}), nil
}

// bearerToken is the request's bearer token, "" if none, as k8s.io/apiserver's bearer token
// authenticator reads it: the word after "Bearer " in the Authorization header.
func bearerToken(req *http.Request) string {
	scheme, after, _ := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	token, _, _ := strings.Cut(after, " ")
	return token
}

// limitedReviewer reviews a token with reviewer unless limit says there have been too many
// reviews: errTooManyReviews then, which the token cache does not keep.
type limitedReviewer struct {
	reviewer authenticator.Token
	limit    *rate.Limiter
}

func (r limitedReviewer) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	if !r.limit.Allow() {
		return nil, false, errTooManyReviews
	}
	return r.reviewer.AuthenticateToken(ctx, token)
}

// tokenReviewer authenticates a token by the super cluster's TokenReview, as k8s.io/apiserver's
// TokenReview webhook does but for a token the review does not authenticate, which is not an
// error here whatever its status.error: an error is a review that could not be made.
type tokenReviewer struct {
	client rest.Interface // of authentication.k8s.io/v1, in JSON, as the webhook's
}

func (r tokenReviewer) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	var review *authenticationv1.TokenReview
	if err := webhook.WithExponentialBackoff(ctx, *reviewBackoff(), func() error {
		review = &authenticationv1.TokenReview{}
		return r.client.Post().Resource("tokenreviews").Body(&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}).Do(ctx).Into(review)
	}, webhook.DefaultShouldRetry); err != nil {
		return nil, false, fmt.Errorf("the super cluster's TokenReview: %w", err)
	}
	if !review.Status.Authenticated {
		// Once per token and cache period. The cache reviews on a context of its own, which
		// has klog's logger.
		klog.FromContext(ctx).V(2).Info("The super cluster did not authenticate a metrics request's bearer token", "reason", review.Status.Error)
		return nil, false, nil
	}
	u := review.Status.User
	var extra map[string][]string
	if u.Extra != nil {
		extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			extra[k] = v
		}
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra}}, true, nil
}
