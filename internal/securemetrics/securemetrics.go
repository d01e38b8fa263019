package securemetrics

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/spf13/pflag"
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

// Start starts srv until ctx ends and waits until it listens, which with a self-signed
// certificate comes after two keys are made. It returns the address srv listens on, or the
// error that ended it first.
func Start(ctx context.Context, srv *Server) (string, error) {
	errc := make(chan error, 1)
	go func() { errc <- srv.Start(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr := srv.Addr(); addr != "" {
			return addr, nil
		}
		select {
		case err := <-errc:
			return "", cmp.Or(err, ctx.Err(), errors.New("the metrics server stopped"))
		case <-tick.C:
		}
	}
}
