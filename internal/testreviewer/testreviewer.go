package testreviewer

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/vnest-dev/vnest/internal/securemetrics"
)

// Reviewer is a super cluster apiserver that answers TokenReviews and SubjectAccessReviews
// alone: tokens are their users' names but those that start with "forged", which it rejects as
// kube-apiserver rejects a token, with status.error, and a user may get the non-resource paths it is allowed. It
// records the resources it was asked to create and the tokens it reviewed.
type Reviewer struct {
	*httptest.Server
	allowed  map[string][]string
	mu       sync.Mutex
	created  map[schema.GroupResource]bool
	reviewed map[string]int
}

// Start runs a Reviewer until the test ends; allowed are the non-resource paths each user may
// get, as RBAC would decide them.
func Start(t *testing.T, allowed map[string][]string) *Reviewer {
	r := &Reviewer{allowed: allowed, created: map[schema.GroupResource]bool{}, reviewed: map[string]int{}}
	r.Server = httptest.NewServer(r)
	t.Cleanup(r.Close)
	return r
}

// Config is a client config of the reviewer.
func (r *Reviewer) Config() *rest.Config { return &rest.Config{Host: r.URL} }

// TokenReviews is how many TokenReviews of token the reviewer answered.
func (r *Reviewer) TokenReviews(token string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reviewed[token]
}

// Asked are the resources the reviewer was asked to create.
func (r *Reviewer) Asked() []schema.GroupResource {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(maps.Keys(r.created))
}

func (r *Reviewer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var out any
	switch req.Method + " " + req.URL.Path {
	case "POST /apis/authentication.k8s.io/v1/tokenreviews":
		var review authenticationv1.TokenReview
		if !decode(w, req, &review) {
			return
		}
		token := review.Spec.Token
		if strings.HasPrefix(token, "forged") {
			review.Status.Error = "[invalid bearer token, square/go-jose: error in cryptographic primitive]"
		} else {
			review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: token}}
		}
		r.mu.Lock()
		r.reviewed[token]++
		r.mu.Unlock()
		out = &review
	case "POST /apis/authorization.k8s.io/v1/subjectaccessreviews":
		var review authorizationv1.SubjectAccessReview
		if !decode(w, req, &review) {
			return
		}
		a := review.Spec.NonResourceAttributes
		review.Status.Allowed = a != nil && a.Verb == "get" && slices.Contains(r.allowed[review.Spec.User], a.Path)
		out = &review
	default:
		http.NotFound(w, req)
		return
	}
	parts := strings.Split(req.URL.Path, "/") // "", "apis", group, version, resource
	r.mu.Lock()
	r.created[schema.GroupResource{Group: parts[2], Resource: parts[4]}] = true
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

// decode decodes req's body, JSON, into review, or answers that it cannot.
func decode(w http.ResponseWriter, req *http.Request, review any) bool {
	if err := json.NewDecoder(req.Body).Decode(review); err != nil {
		http.Error(w, fmt.Sprintf("the reviewer reads JSON (%s): %v", req.Header.Get("Content-Type"), err), http.StatusUnsupportedMediaType)
		return false
	}
	return true
}

// SelfSignedClient is a client of a server whose certificate is signed by itself, which it
// cannot verify.
var SelfSignedClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// Get GETs url with token as bearer token, if any, and returns the status code and body.
func Get(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// Listen starts the metrics server srv until the test ends (securemetrics.Start) and returns
// the address it listens on.
func Listen(t *testing.T, srv *securemetrics.Server) string {
	t.Helper()
	addr, err := securemetrics.Start(t.Context(), srv)
	if err != nil {
		t.Fatalf("starting the metrics server: %v", err)
	}
	return addr
}
