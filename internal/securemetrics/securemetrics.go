package securemetrics

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// AddFlags binds --metrics-secure to secure and --metrics-cert-dir to certDir.
func AddFlags(fs *pflag.FlagSet, secure *bool, certDir *string) {
	fs.BoolVar(secure, "metrics-secure", *secure, "Serve the metrics address over HTTPS, each request authenticated by the super cluster's TokenReview and authorized by a SubjectAccessReview (get of the path, e.g. nonResourceURLs /metrics); needs --metrics-bind-address")
	fs.StringVar(certDir, "metrics-cert-dir", *certDir, "Directory of the secure metrics address's certificate, tls.crt and tls.key (reloaded when they change); empty: a self-signed one made at start; needs --metrics-secure")
}

// Validate reports the flags of AddFlags that need another one: metricsOff tells whether
// --metrics-bind-address turns the metrics address off.
func Validate(metricsOff, secure bool, certDir string) []error {
	var errs []error
	if secure && metricsOff {
		errs = append(errs, errors.New("--metrics-secure secures the metrics address: set --metrics-bind-address too"))
	}
	if certDir != "" && !secure {
		errs = append(errs, errors.New("--metrics-cert-dir is the certificate of the secure metrics address: set --metrics-secure too"))
	}
	return errs
}

// Secure makes o serve HTTPS with the certificate of certDir (tls.crt and tls.key, reloaded
// when they change; empty is controller-runtime's default directory, and a certificate signed
// by itself, made at start, when it has none), HTTP/1.1 only, and lets a request through only
// when the super cluster (the server's rest config) authenticates its bearer token
// (TokenReview) and authorizes its user to get the path, a non-resource URL
// (SubjectAccessReview). The server's identity needs create of tokenreviews and
// subjectaccessreviews.
func Secure(o *metricsserver.Options, certDir string) {
	o.SecureServing = true
	o.CertDir = certDir
	o.TLSOpts = append(o.TLSOpts, withoutHTTP2)
	o.FilterProvider = filters.WithAuthenticationAndAuthorization
}

// withoutHTTP2 serves HTTP/1.1 only, as kubebuilder's projects do by default: HTTP/2's stream
// reset and continuation floods (CVE-2023-44487, CVE-2023-39325) cost a server more than a
// metrics scrape needs, and anyone who reaches the pod IP can send them before any check.
func withoutHTTP2(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }

// Start starts srv until ctx ends and waits until it listens, which with a self-signed
// certificate comes after two keys are made. It returns the address srv listens on, or the
// error that ended it first.
func Start(ctx context.Context, srv metricsserver.Server) (string, error) {
	bound, ok := srv.(interface{ GetBindAddr() string }) // controller-runtime's: "" until it listens
	if !ok {
		return "", fmt.Errorf("the metrics server %T does not tell its address", srv)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Start(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr := bound.GetBindAddr(); addr != "" {
			return addr, nil
		}
		select {
		case err := <-errc:
			return "", cmp.Or(err, ctx.Err(), errors.New("the metrics server stopped"))
		case <-tick.C:
		}
	}
}
