// Package manifests holds the kustomize tree that installs vnest on any
// cluster (`kubectl apply -k manifests/`) and embeds the CRDs so that
// `vnest up` can install them without reading files at run time.
package manifests

import "embed"

// CRDs are the generated CustomResourceDefinitions (crd/*.yaml).
//
//go:embed crd/tenancy.vnest.dev_*.yaml
var CRDs embed.FS
