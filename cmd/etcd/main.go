// Command etcd is upstream etcd's server (go.etcd.io/etcd/server/v3/etcdmain,
// the version in go.mod) for the conformance suite's etcd image: the
// Aggregator test runs it as /usr/local/bin/etcd next to the sample
// apiserver. etcd's own main lives in its root module, which vnest does not
// need otherwise; this is the same one line.
//
// Build it static:
//
//	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/etcd ./cmd/etcd
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
