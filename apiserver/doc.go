// Package apiserver runs one tenant's whole Kubernetes control plane in one
// process (`vnest apiserver`): the upstream kube-apiserver v1.36.3 with its
// storage in etcd under the tenant's own key prefix, and, once it is ready,
// the kube-controller-manager controllers a tenant needs (Controllers). There
// is no scheduler and there are no node, volume, IPAM or cloud controllers:
// the super cluster owns scheduling, nodes and volumes (DisabledControllers
// says why for each one).
//
// Lifecycle: Options (flags) → Complete (defaults, PKI files) → Validate →
// Run(ctx). Run writes STATE_DIR/admin.kubeconfig once /readyz answers 200
// and removes it when it returns, so the file's presence means "ready". A
// stop through ctx stops the controllers, then the apiserver, and returns nil.
//
// # What the package owns
//
//   - The flags of both upstream components for a tenant: TLS only, client
//     certificates + service-account tokens, RBAC, the tenant's service CIDR
//     (layout.DefaultServiceCIDR) and service-account key, the front proxy for
//     aggregated API servers the tenant installs.
//   - The PKI file layout (package layout): which files, which identities.
//     Missing files are created; present ones are used as they are and never
//     reissued, so the operator may provide them (read-only via --pki-dir).
//     The exception is a PKI in the state directory (no other --pki-dir),
//     which the process owns: its leaf certificates that expire within 30
//     days are renewed at start and every 12 hours (renew.go), since nothing
//     else renews them; the manager renews its tenants' in their Secrets.
//     CertificateSigningRequests are signed by a CA of their own, which the
//     apiserver trusts for client certificates along with the tenant CA; the
//     tenant CA alone is what the syncer's kubelet proxy trusts.
//   - The process: start order, readiness, clean stop, Go GC settings, and
//     GOMAXPROCS once ready (--ready-max-procs, 1 by default; limitProcs).
//     The controllers all act as system:kube-controller-manager, whose
//     certificate is in system:masters, rather than each as its own
//     service account (kubeadm's --use-service-account-credentials): the
//     ~25 service accounts and token requests that takes at start-up kept
//     a new tenant from being ready for 1–3 s more, 5 s more under load.
//   - With --service-ip-allocator, one admission step of its own
//     (serviceipadmission): new Services take their cluster IPs from that
//     allocator, so that they equal the super cluster's.
//   - How the storage reaches etcd: one connection for every resource
//     (sharedetcd) instead of upstream's one per resource, ~63 for an empty
//     tenant, which every tenant would hold open on the shared etcd.
//
// # What it must not do
//
//   - Know about VirtualCluster objects, the super cluster, the syncer or
//     other tenants (the Service IP allocator is a URL and a protocol,
//     internal/serviceip). The operator decides prefixes, ports, names and
//     certificates; this package only runs what it is told to.
//   - Write etcd outside --etcd-prefix. That is why etcd compaction is off by
//     default: compaction is etcd-wide and coordinated through a key outside
//     every prefix (compact_rev_key), which a tenant's prefix-scoped etcd
//     role cannot (and must not) write. Whoever owns the shared etcd compacts
//     (in the local super cluster its kube-apiserver, every 5 minutes, and
//     etcd itself hourly). The tenant reads that one key to follow the
//     compactions (package sharedetcd), which its etcd role allows.
//   - Run more than one control plane per process at a time:
//     kube-controller-manager registers process-wide names (its informer
//     factory's, its configz entry). One after the other works (the restart
//     test does it), but upstream leaves a few etcd clients behind after a
//     stop, so the model is one process per control plane, restarted as a
//     process.
//
// # Footprint
//
// Measured with BenchmarkIdleControlPlane and BenchmarkIdleStockKubeAPIServer
// (bench_test.go; VNEST_BENCH_BINARY=<vnest binary>), 2 vCPUs, an empty
// tenant, figures read 60 s after ready, vnest binary of 267 MB. "anon" is
// RssAnon, the process's own memory; the rest of VmRSS is the executable's
// pages, which this kernel maps in 2 MiB folios (≈110–155 MiB, varying with
// the page cache) and which every process of the same binary shares: with
// two tenants each one's Pss_File was half its RssFile. So the memory one
// more tenant costs is its anon figure. Between runs of one configuration
// anon varied by ±4 MiB.
//
//	configuration                                    VmRSS   anon  idle CPU
//	stock `vnest kube-apiserver` alone, same flags    335    181   2.2%
//	apiserver+controllers, Go defaults (GOGC 100) 316–331  183–199   3.1–3.3%
//	  GOGC 50 from the start                      274–299  151–158   3.2–4.0%
//	  GOGC 25 from the start                      260–295  143–148   3.9–5.0%
//	  GOGC 100, FreeOSMemory once ready               317    163   3.5%
//	  GOGC 25 + FreeOSMemory once ready           294–305  151–156   4.5–4.9%
//	  same, 2026-12-04 (session 16), three runs   281–283  160–163   1.7–2.0%
//	  + 150Mi memory limit until ready            269–313  145–152   1.7–2.1%
//	  + 150Mi memory limit kept (not adopted)     299–302  139–142   2.1–2.7%
//	  + OpenAPI documents as bytes (session 18)   249–250  132–133   1.6–1.8%
//	  + OpenAPI configs holding no builder        234–236  116–118   1.5%
//	  + bytes gzipped, v3 definitions released    222–228  104–110   1.4–1.7%
//	  + VAP type definitions on first use (s. 19)  220–224  102–106   1.2–1.5%
//	  + start-up limit 100Mi, following the heap  213–216   95–98   1.1–1.4%
//	  + executable's pages released (session 20)  158–159   96–97   1.2–1.4%
//	    the same, read after 5 min idle               165–169   99–101  1.3%
//	  + run from bin/vnest-apiserver (default)    148–149   94–96   1.0–1.4%
//	    the same, read after 5 min idle                   152     93   1.3%
//	    the same, session 21's slower machine     149–152   95–97   2.3–2.7%
//	    the same in a cluster-provisioner pod       147–149   92–94   —   (hack/measure-cluster-tenant.sh)
//	  GOMEMLIMIT 120Mi (GOGC 100)                     276    129   125% (GC runs back to back)
//	  GOMEMLIMIT 200Mi, GOGC 50 (not reached idle)    272    155   3.4%
//	  --watch-cache=false (GOGC 50)                   273    156   3.1%
//	  --enable-priority-and-fairness=false            275    159   4.0%
//	  --etcd-count-metric-poll-period=0               274    156   3.7%
//	  resource.k8s.io/v1 off (breaks conformance)     268    152   3.8%
//	  test binary instead of vnest (links less)       257    152   4.7%
//
// Of the runtime knobs the GC target is the one that matters; the live heap of an idle
// tenant was ~100 MiB, nearly all of it upstream (OpenAPI v2 and v3 specs and
// definitions ≈35 MiB, since session 18 kept only as the documents'
// compressed bytes: package openapibytes; REST routes and storage ≈18 MiB, the controllers
// ≈12 MiB of which 7 MiB was the ValidatingAdmissionPolicy type checker's
// definitions, built since session 19 on the first policy (package vapstatus), init
// of linked packages ≈8 MiB), plus ≈18 MiB of stacks for ≈3300 goroutines
// (≈15 per served resource; ≈3000 since sharedetcd). The API knobs stay at their upstream defaults:
// none moved the figure beyond the noise, and each costs behaviour (etcd
// load, fairness, conformance). Tightening the GC only once ready keeps
// start-up at Go's default target: 3.3–3.7 s of CPU to ready against
// 3.8–4.5 s with GOGC 25 from the start, for ≈7 MiB more anon; set GOGC=25
// in the environment to prefer memory. Since 2026-12-04 start-up runs under a
// soft memory limit of 150Mi (--start-memory-limit), lifted once ready: the
// GC then runs in the last part of start-up, so less of start-up's garbage
// stays spread among what lives on (the fragmentation: heap in use 130 MiB
// with 96 MiB allocated before it), for ≈12 MiB less anon at 0.2–0.4 s more
// to ready (1.2–1.4 s → 1.3–2.1 s). A limit kept after ready saves ≈8 MiB
// more but is no fixed number: a tenant with more data has a larger live
// heap, and near the live heap a limit makes the GC spin (a limit that
// followed the live heap after each GC, tried the same day, saved nothing
// measurable: 147–149 MiB). Since 2026-12-05 (session 19) the start-up limit
// is 100Mi, and during start-up it follows the live heap (1.5 × the live heap
// once that comes within a third of the limit): an empty tenant's start-up
// stays under 100Mi (≈7–12 MiB less anon than at 150Mi, at ≈0.3 s and 0.7
// CPU-s more to ready), and one restarted with 3,000 ConfigMaps of 8 KB starts
// as fast as at 150Mi (BenchmarkRestartWithData: 1.2 s against 1.3 s; a fixed
// 100Mi, measured by hand before the follower, took 2.8–3.0 s: the GC ran back
// to back).
//
// Since session 20 the process also unmaps, once ready, the pages of its
// executable that start-up mapped (--release-executable-pages, package
// exepages): an idle tenant's RssFile went from ≈120 to ≈64 MiB read 60 s
// after ready, ≈68 MiB after 5 min — what idle work touches again (the GC's
// reads of type and stack maps, the controllers' and watch caches' timers),
// mapped again by fault-around (whole large folios of the page cache on this
// kernel, so more when `go build` just wrote the binary). Re-released when
// the process goes idle after being busy (gcTuner), so a busy spell's pages
// go too. The local provisioner runs tenants from bin/vnest-apiserver, which
// links only this command: ≈10 MiB less again (≈54 MiB RssFile). Figures of
// the last rows from binaries read from disk (the benchmark evicts them from
// the page cache first).
//
// GOGC 25 is the idle target only: a busy tenant (one creating pods through
// the syncer) spent 24–27% of its CPU in GC at 25 and 11–12% at 100, so
// while the process allocates more than 4 MiB/s (an idle one: ~0.3 MiB/s,
// BenchmarkIdleControlPlane's MiB/s-idle-alloc)
// the target is --busy-gc-percent (100), and 30 s after the last such second
// it goes back to 25 with the freed memory released (gcTuner, goruntime.go).
// While idle, the tuner also returns what each of the runtime's GC cycles
// frees at once (a forced cycle after it, at most every 10 s and only in a
// second that allocated at most 1 MiB), where the runtime's scavenger
// would take half a minute and keep a tenth of the heap goal: read 60 s after
// ready, VmRSS 143.3–149.9 MiB (median 146.4, 13 runs) against 148.4–150.5,
// idle CPU unchanged (1.2–1.6%) (2026-12-06, docs/benchmarks.md).
//
// Start-up to ready (process start to admin.kubeconfig) took 3.8–5.4 s here,
// median 4.1 s, against 4.4–5.3 s for the stock kube-apiserver alone, on a
// machine busy with other builds.
package apiserver
