// Package pki creates and keeps the certificates, keys and kubeconfigs of a
// vnest control plane on disk, or in memory (Files) for a PKI kept elsewhere.
//
// Everything is load-or-create: an existing file that still matches what is
// asked for (issuer, names, addresses, usages, not close to expiry) is reused,
// so restarting a control plane on the same directory keeps its identity and
// clients keep working. A file that no longer matches is reissued. A leaf
// certificate is valid for a year, but never past its CA's end, after which
// no client would verify it; one that ends with its CA is kept however close
// to expiry, since a new one would end no later, and an expired CA issues
// nothing.
//
// Every file is written aside, synced and renamed into place, so a crash or a
// power loss never leaves half a key under its name; WriteFile does the same
// for credentials the caller places itself (a kubeconfig a user asked for).
//
// The package only deals with files and crypto; it must not talk to any
// server and must not know which component uses which certificate.
package pki
