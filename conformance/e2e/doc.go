// Package e2e builds the upstream Kubernetes e2e test binary (v1.36.3) from
// the module source: `go test -c -tags conformance -o bin/e2e.test
// ./conformance/e2e`. It mirrors k8s.io/kubernetes/test/e2e/e2e_test.go and
// holds no tests of its own.
//
// The build tag keeps the e2e test packages (a long build on a small machine)
// out of `go vet ./...` and `go test ./...`; `go mod tidy` still sees them, so
// go.mod and go.sum carry what the binary needs.
package e2e
