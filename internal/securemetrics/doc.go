// Package securemetrics is the metrics address of the syncer and the manager: the flags
// --metrics-secure and --metrics-cert-dir and their validation, and the server, which serves
// controller-runtime's registry and the extra handlers a component gives it, with timeouts,
// over HTTPS (HTTP/1.1 only) with --metrics-secure, a request let through only when the super
// cluster's TokenReview and SubjectAccessReview allow its bearer token, with the reviews of
// tokens not known yet limited to a rate (a flood of forged tokens gets 429). It has no metrics and
// no handlers of its own besides /metrics.
package securemetrics
