// Package vapstatus runs upstream's ValidatingAdmissionPolicy status
// controller (k8s.io/kubernetes/pkg/controller/validatingadmissionpolicystatus)
// for a tenant control plane, in its process, in place of the one
// kube-controller-manager would start.
//
// The controller type-checks each policy's CEL expressions against the
// OpenAPI schemas of the kinds the policy matches and writes the warnings to
// status.typeChecking. kube-controller-manager's constructor builds, at
// start, the OpenAPI definitions of every built-in type for that (upstream's
// generated GetOpenAPIDefinitions; an idle tenant's live heap is ≈7 MB smaller
// without them, 56–57 against 63–64 MB) and keeps them for
// as long as it runs, although most tenants never create a policy. Here the
// definitions are built when the first policy is checked, and kept from then
// on, as upstream keeps them. Everything else is upstream's: the controller,
// the type checker, the schema resolution (built-in types from the
// definitions, custom resources from the apiserver's OpenAPI v3 documents) and
// a REST mapper reset every 30 s, as kube-controller-manager resets its own.
//
// What it must not do: check or write anything upstream's controller would not.
package vapstatus
