// Package layout is the contract between a tenant control plane (`vnest
// apiserver`, package apiserver) and whoever provides its files (the vnest
// manager): the names of the PKI files, the identities in the client
// certificates, the serving certificate's names, the files the process
// writes, and the flag defaults others must know (service range, port).
//
// It is its own package so the manager can use it without linking
// kube-apiserver (package apiserver imports k8s.io/kubernetes). It must stay
// light: internal/pki and the standard library only.
package layout
