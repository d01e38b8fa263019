// Package v1alpha1 is the tenancy.vnest.dev/v1alpha1 API: the VirtualCluster
// custom resource that asks the vnest manager for a tenant control plane, and
// the small pure helpers every component needs to agree on (the cluster key,
// the kubeconfig Secret name).
//
// The package owns the Go types, their validation markers and the generated
// deepcopy code; the CRD YAML in manifests/crd is generated from it by
// controller-gen. It must stay light: its non-test code may import only
// k8s.io/api, k8s.io/apimachinery and controller-runtime's scheme package,
// never k8s.io/kubernetes, clients or controller logic, because the manager,
// the syncer and the CLI all link it. (The tests also use
// k8s.io/apiextensions-apiserver to check the generated CRD the way the
// apiserver does.)
//
// +kubebuilder:object:generate=true
// +groupName=tenancy.vnest.dev
package v1alpha1
