// Package exepages gives back the pages of the running executable that a
// long-running process mapped and no longer uses.
//
// A Go process maps its executable's text and read-only data from the page
// cache as it touches them. A tenant control plane touches most of the vnest
// binary while it starts (every linked package's init, API routes, OpenAPI,
// the controllers' set-up) and afterwards only a part of it; the rest stays
// mapped, counted in its RSS (RssFile), for as long as it runs. When the
// page cache holds the binary in large folios (a binary fresh from `go
// build`, or read ahead in 8 MiB), a single touch maps a whole 2 MiB folio.
//
// Release unmaps the executable's private, read-only mappings that hold no
// page of the process's own (no copy-on-write page: nothing can be lost) with
// madvise(MADV_DONTNEED), after marking them MADV_NOHUGEPAGE so that what the
// process touches again is not mapped a whole 2 MiB folio at a time through
// one page-middle-directory entry (fault-around still maps the rest of a large
// folio: how much comes back depends on the folios the page cache holds the
// binary in). The pages stay in the page cache, shared with every other process of the binary, and the next touch
// maps them again from there (a minor fault); nothing is read from disk
// unless the kernel has evicted them meanwhile. Writable mappings (.data,
// .bss) are never touched.
//
// Linux only; elsewhere Release does nothing.
package exepages
