package securemetrics_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/vnest-dev/vnest/internal/securemetrics"
	"github.com/vnest-dev/vnest/internal/testreviewer"
)

// TestCheck: the secure address lets a request through only with a bearer token the super
// cluster authenticates, whose user may get the path; it answers no token and a token the super
// cluster rejects (which kube-apiserver's TokenReview reports with status.error) 401 with a
// Bearer challenge, as kube-apiserver does, a user not allowed 403; every path is checked, the
// ServeMux's not-founds and redirects too. None of it is logged but at V(4), and a rejected
// token is reviewed once per cache period, however often it comes.
func TestCheck(t *testing.T) {
	super := testreviewer.Start(t, map[string][]string{"prometheus": {"/metrics"}, "admin": {"/metrics", "/nothing"}})
	logger, addr := startSecure(t, super.Config())
	for _, tc := range []struct {
		path, token string
		want        int
		wantBody    string
	}{
		{path: "/metrics", want: http.StatusUnauthorized, wantBody: "Unauthorized"},
		{path: "/metrics", token: "forged", want: http.StatusUnauthorized, wantBody: "Unauthorized"},
		{path: "/metrics", token: "forged", want: http.StatusUnauthorized, wantBody: "Unauthorized"},
		{path: "/metrics", token: "tenant-pod", want: http.StatusForbidden, wantBody: "Authorization denied for user tenant-pod"},
		{path: "/metrics", token: "prometheus", want: http.StatusOK, wantBody: "# HELP"},
		{path: "/nothing", want: http.StatusUnauthorized},
		{path: "/nothing", token: "prometheus", want: http.StatusForbidden},
		{path: "/nothing", token: "admin", want: http.StatusNotFound},
		{path: "//metrics", want: http.StatusUnauthorized},
	} {
		code, header, body := get(t, addr, tc.path, tc.token)
		if code != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("GET %s with token %q = %d %.80q, want %d with %q", tc.path, tc.token, code, body, tc.want, tc.wantBody)
		}
		if challenge := header.Get("WWW-Authenticate"); (code == http.StatusUnauthorized) != (challenge == "Bearer") {
			t.Errorf("GET %s with token %q = %d with WWW-Authenticate %q, want Bearer with 401 alone", tc.path, tc.token, code, challenge)
		}
	}
	if n := super.TokenReviews("forged"); n != 1 {
		t.Errorf("the forged token, sent twice, was reviewed %d times; want once, its answer kept", n)
	}
	if lines := logged(logger, 0); len(lines) != 0 {
		t.Errorf("logged, not verbose:\n%s", strings.Join(lines, "\n"))
	}
}

// TestCheckReviewLimit: tokens the cache does not hold are reviewed at most at the review
// rate: past it a request is refused with 429 and a Retry-After, reviewing nothing, while a
// token already reviewed still goes through; the refusals are logged once (not verbose), and
// the rest at V(4).
func TestCheckReviewLimit(t *testing.T) {
	t.Cleanup(securemetrics.SetReviewLimit(0.001, 3)) // 3 reviews, then none for the test's time
	super := testreviewer.Start(t, map[string][]string{"prometheus": {"/metrics"}})
	logger, addr := startSecure(t, super.Config())
	if code, _, body := get(t, addr, "/metrics", "prometheus"); code != http.StatusOK {
		t.Fatalf("GET /metrics, the scraper's token = %d %.80q, want 200", code, body)
	}
	var codes []int
	reviewed := 0
	for i := range 10 {
		token := fmt.Sprintf("forged-%d", i)
		code, header, body := get(t, addr, "/metrics", token)
		codes = append(codes, code)
		if code == http.StatusTooManyRequests && (header.Get("Retry-After") == "" || !strings.Contains(body, "Too many tokens to review")) {
			t.Errorf("GET /metrics with %s = 429 %q, Retry-After %q; want the reason and a Retry-After", token, body, header.Get("Retry-After"))
		}
		reviewed += super.TokenReviews(token)
	}
	want := []int{401, 401, 429, 429, 429, 429, 429, 429, 429, 429}
	if !slices.Equal(codes, want) || reviewed != 2 {
		t.Errorf("10 forged tokens after the scraper's: answered %v and %d reviewed; want %v and 2 (the review limit's burst is 3)", codes, reviewed, want)
	}
	if code, _, body := get(t, addr, "/metrics", "prometheus"); code != http.StatusOK {
		t.Errorf("GET /metrics, the scraper's token during the flood = %d %.80q, want 200 (its review kept)", code, body)
	}
	if lines := logged(logger, 0); len(lines) != 1 || !strings.Contains(lines[0], "Refusing metrics requests whose token is not known yet") {
		t.Errorf("logged, not verbose:\n%s\nwant one line of the refusals", strings.Join(lines, "\n"))
	}
}

// TestCheckReviewFails: a token the super cluster cannot review (it cannot be reached) gets 500,
// and the failure is logged as an error.
func TestCheckReviewFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	logger, addr := startSecure(t, &rest.Config{Host: "http://" + l.Addr().String()})
	if code, _, body := get(t, addr, "/metrics", "prometheus"); code != http.StatusInternalServerError {
		t.Errorf("GET /metrics, the super cluster down = %d %.80q, want 500", code, body)
	}
	if lines := logged(logger, 0); len(lines) != 1 || !strings.Contains(lines[0], "ERROR Cannot authenticate a metrics request") || !strings.Contains(lines[0], "connection refused") {
		t.Errorf("logged:\n%s\nwant the failure to authenticate, an error", strings.Join(lines, "\n"))
	}
}

// TestCheckClientGone: a client that goes away while its token is reviewed is no error, or
// anyone could log errors by sending a token and closing the connection.
func TestCheckClientGone(t *testing.T) {
	asked, done := make(chan struct{}, 1), make(chan struct{})
	super := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		asked <- struct{}{}
		select { // the review is held until the test ends
		case <-req.Context().Done():
		case <-done:
		}
		http.Error(w, "gone", http.StatusServiceUnavailable)
	}))
	t.Cleanup(super.Close)
	t.Cleanup(func() { close(done) }) // before super.Close, which waits for the held review
	logger, addr := startSecure(t, &rest.Config{Host: super.URL})
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET /metrics HTTP/1.1\r\nHost: m\r\nAuthorization: Bearer anyone\r\n\r\n")
	<-asked
	_ = conn.Close()
	for deadline := time.Now().Add(30 * time.Second); len(logged(logger, 4)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request was not done with 30 s after its client went away")
		}
	}
	if lines := logged(logger, 4); len(lines) != 1 || !strings.Contains(lines[0], "Metrics request gone during its authentication") {
		t.Errorf("logged:\n%s\nwant only that the request is gone, at V(4)", strings.Join(lines, "\n"))
	}
}

// startSecure starts a secure metrics server whose super cluster is super until the test ends,
// logging to the returned logger, and returns it and the address it listens on.
func startSecure(t *testing.T, super *rest.Config) (logr.Logger, string) {
	t.Helper()
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(4), ktesting.BufferLogs(true)))
	srv, err := securemetrics.NewServer(securemetrics.Options{BindAddress: "127.0.0.1:0", Secure: true}, super)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := securemetrics.Start(klog.NewContext(t.Context(), logger), srv)
	if err != nil {
		t.Fatal(err)
	}
	return logger, addr
}

// get GETs path of the secure metrics server at addr with token as bearer token, if any.
func get(t *testing.T, addr, path, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The ServeMux's redirects are answers to check, not to follow.
	client := &http.Client{Transport: testreviewer.SelfSignedClient.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body strings.Builder
	if _, err := io.Copy(&body, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body.String()
}

// logged are the lines logger logged at verbosity v or below, errors included, but for the
// server's start.
func logged(logger logr.Logger, v int) []string {
	var lines []string
	for _, e := range logger.GetSink().(ktesting.Underlier).GetBuffer().Data() {
		if e.Verbosity <= v && e.Message != "Serving metrics" {
			lines = append(lines, fmt.Sprintf("%s %s %v %v", e.Type, e.Message, e.Err, slices.Concat(e.WithKVList, e.ParameterKVList)))
		}
	}
	return lines
}
