// Package testetcd runs a real etcd member inside a test process, for tests
// of code that stores in etcd (the tenant apiserver, its shared etcd client).
package testetcd
