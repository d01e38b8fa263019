// Package testmem is for benchmarks that measure what one more of something (a stream, a query)
// costs the process: it reads the live heap after forced collections, the goroutine stacks and
// the goroutines, and waits for goroutines to end so that one reading does not count what an
// earlier one left. It measures and nothing else; the benchmark decides what a figure means.
package testmem
