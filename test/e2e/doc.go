// Package e2e holds the end-to-end tests of `vnest up`: they run the built binary as a child
// process, talk to the super cluster it starts through the kubeconfig it writes, and check what
// it leaves behind on the host once stopped.
//
// The package owns no production code and must not import any: the tests see vnest only as a
// binary, exactly as a user does. Keep k8s.io/kubernetes out of it, so the test binary stays
// quick to build.
//
// What the tests need:
//
//   - The binary, built first with `make build` (it lands in bin/vnest at the repository root).
//     VNEST_BIN points the tests at another binary (a relative path is taken from the repository
//     root). TestMain fails at once when the binary is missing.
//   - Root for real nodes (TestRealNode), plus the Debian packages vnest's real-node mode needs
//     (containerd, runc, containernetworking-plugins, iptables, conntrack). Without root,
//     TestRealNode is skipped — unless CI=true, where it fails instead: CI must exercise real
//     nodes, and a skipped test there would hide that it did not.
//   - Free TCP ports: each test's `vnest up` uses its own block (--apiserver-port P: P..P+12, and
//     P+100..P+199 for local tenant control planes), 16443–18042 in all, so a cluster that one test
//     failed to stop cannot break the next. Some tests run on simulated (kwok) nodes and say so:
//     what they check does not need a kubelet, or needs more pods than one real node holds.
//
// Run them with:
//
//	make build && go test ./test/e2e/ -v -count=1 -timeout 40m
//
// `go test -short` skips the whole package, so `go test -short ./...` stays a unit-test run.
// When a test fails, its cleanup prints the last lines of the `vnest up` log, which is kept in
// the test's data directory as vnest-up.N.log.
package e2e
