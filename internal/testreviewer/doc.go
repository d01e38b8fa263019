// Package testreviewer is for tests of the secure metrics address (internal/securemetrics) of
// the syncer and the manager: it runs a fake super cluster apiserver that answers TokenReviews
// and SubjectAccessReviews alone, starts a metrics server, and GETs it with a bearer token.
package testreviewer
