// Package integration tests the vnest manager against real components: a
// `vnest up --nodes simulated` super cluster (child process), the manager
// in the test process, tenant control planes as `vnest apiserver` child
// processes, and an embedded etcd with auth on. It holds tests only.
//
// The tests need bin/vnest with the `up` and `apiserver` commands (make
// build) or VNEST_BINARY pointing at one; without it they skip. Ports:
// VNEST_TEST_PORT (default 20200) and the next 9 for the super cluster,
// 20300-20349 for tenants.
package integration
