// Package openapibytes serves a kube-apiserver's own OpenAPI documents
// (/openapi/v2, /openapi/v3 and /openapi/v3/<group-version>) from their
// serialized bytes, so that the process does not keep the documents' object
// trees for as long as it runs.
//
// Upstream's generic apiserver builds these documents once, in PrepareRun
// (k8s.io/apiserver/pkg/server/routes.OpenAPI), and serves them through
// kube-openapi's handlers, which cache the JSON and keep the spec objects it
// was made from (their caches hold the first successful value for good). For
// the built-in APIs of a tenant that is ~25 MiB of live heap of an idle
// process that nobody reads after start-up: the aggregator in front reads the
// v2 document once to merge its own, and proxies v3 requests to the bytes.
//
// InstallV2 and InstallV3 build the documents with upstream's own code, on a
// mux of their own, read each one back as JSON through upstream's handler,
// keep it gzip-compressed (unpacked for each response that carries it, not
// for a conditional request answered with 304), and register handlers on the
// server's mux that serve those bytes the way upstream's do: the same ETags (so the hashes in the v3 discovery document
// stay right), the same media types (JSON, and protobuf made from the JSON on
// the first request for it), the same `?hash=` redirects and cache headers
// for v3, gzip for v2. The object trees become garbage once installed.
//
// What it must not do: change a document (its bytes are upstream's), or serve
// anything but a server's built-in APIs: CustomResourceDefinitions and
// APIServices publish their documents through the apiextensions server and
// the aggregator, which this package leaves alone.
package openapibytes
