// Package securemetrics is what the syncer and the manager share of their metrics address:
// the flags --metrics-secure and --metrics-cert-dir, their validation, and the options that
// make controller-runtime's metrics server serve HTTPS (HTTP/1.1 only) and let a request
// through only when the super cluster's TokenReview and SubjectAccessReview allow its bearer
// token. It has no metrics and no handlers of its own: each component builds its server.
package securemetrics
