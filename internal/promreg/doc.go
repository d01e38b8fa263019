// Package promreg registers Prometheus collectors that a process may make more than once (a
// syncer or kubelet proxy constructed again in one process, as the tests do): the collector
// registered first is the one served, and a later construction writes to it instead of to a
// series nobody gathers.
package promreg
