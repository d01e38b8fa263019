// Package manifests holds the kustomize trees that install vnest on another
// cluster (`kubectl apply -k manifests/crd`, `kubectl apply -k manifests/syncer`;
// the manager's ClusterRole in manifests/rbac) and embeds the CRDs so that
// `vnest up` can install them without reading files at run time.
package manifests

import "embed"

// CRDs are the generated CustomResourceDefinitions (crd/*.yaml).
//
//go:embed crd/tenancy.vnest.dev_*.yaml
var CRDs embed.FS
