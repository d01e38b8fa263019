// Package bench holds benchmarks of vnest as a whole: a local super cluster (`vnest up
// --nodes simulated`) with its manager and tenant control planes as child processes, the
// syncer as a child process of its own, and the benchmark in this process driving tenants and
// the super cluster through their APIs. It holds benchmarks only, and no production code.
//
// BenchmarkSyncer measures the syncer against the direct path (throughput of 1,000 pods across
// 10 tenants ÷ the same pods created on the super cluster), the latency from a tenant create to
// the super pod (next to the same series created on the super cluster), the syncer's memory
// per synced pod and the fairness of its queue under a flood.
// Run it with `make bench`, or alone:
//
//	make build && VNEST_BENCH_BINARY=$PWD/bin/vnest go test ./test/bench/ -run '^$' -bench Syncer -benchtime 1x -timeout 45m
//
// It is a measurement, not a timed test: one run, whatever b.N, and it never fails on a missed
// goal; docs/benchmarks.md records the figures.
//
// What it needs: bin/vnest (`make build`; VNEST_BENCH_BINARY names another binary), free TCP
// ports 17443–17700 (the super cluster's block from 17443, tenant control planes from 17543,
// the syncer's metrics on 17460), about 4 GiB of memory for ten tenant control planes. Extra
// `vnest syncer` flags for experiments go in VNEST_BENCH_SYNCER_ARGS (space separated, e.g.
// "--workers=16"); VNEST_BENCH_TENANT_CPU_LIMIT gives every tenant control plane a CPU limit
// (spec.controlPlane.resources.limits.cpu, e.g. "1"; the local provisioner's cgroups need
// root); VNEST_BENCH_LOG_DIR receives a copy of every log of the run (the data
// directory itself is removed).
//
// Keep k8s.io/kubernetes out of this package: the test binary must stay quick to build.
package bench
