# vnest — see README.md. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin
DATA_DIR ?= .vnest
E2E_TIMEOUT ?= 60m
# The upstream components report this version (kubectl version, node info, discovery).
KUBE_VERSION := v1.36.3
VERSION_PKG := k8s.io/component-base/version
# No symbol table or DWARF, as upstream's release builds (stack traces and profiles use the Go
# runtime's own tables): bin/vnest 262 → 187 MiB, bin/vnest-apiserver 159 → 111 MiB, and the
# vnest image with them. `make build STRIP=` keeps them for a debugger.
STRIP ?= -s -w
LDFLAGS := $(STRIP) -X $(VERSION_PKG).gitVersion=$(KUBE_VERSION) -X $(VERSION_PKG).gitMajor=1 -X $(VERSION_PKG).gitMinor=36 \
	-X $(VERSION_PKG).gitTreeState=clean -X $(VERSION_PKG).buildDate=1970-01-01T00:00:00Z

.PHONY: help build run test test-unit test-integration test-e2e bench images generate manifests lint clean deps conformance-build conformance

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## Build bin/vnest (all components, one binary), bin/vnest-apiserver (a tenant control plane alone) and bin/pause
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vnest ./cmd/vnest
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vnest-apiserver ./cmd/vnest-apiserver
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/pause ./cmd/pause

deps: ## Install the Debian packages real nodes need (root only; no-op when present)
	@hack/install-deps.sh

run: deps build ## Run a local super cluster in the foreground (data in .vnest)
	$(BIN)/vnest up --data-dir $(DATA_DIR)

test: lint test-unit test-integration test-e2e ## Everything CI runs: lint, unit, integration and e2e tests

test-unit: ## Unit tests (pure functions, fake clients, a private containerd); api, internal and syncer under the race detector
	$(GO) test -count=1 -race ./api/... ./internal/... ./syncer/...
	$(GO) test -count=1 ./cmd/... ./conformance/... ./test/bench/

test-integration: build ## Tenant control plane on real etcd; manager against a simulated `vnest up`, under the race detector
	$(GO) test -count=1 -p 1 -timeout 30m ./apiserver/...
	$(GO) test -count=1 -p 1 -race -timeout 30m ./manager/...

test-e2e: deps build conformance-build ## End-to-end tests against real `vnest up` clusters (real nodes need root)
	$(GO) test -count=1 -p 1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/

bench: build ## Benchmarks: tenant ready time, idle memory, syncer throughput/latency/memory/fairness, what cached events and the proxy's and DNS's per-tenant limits cost (see docs/benchmarks.md)
	VNEST_BENCH_BINARY=$(CURDIR)/$(BIN)/vnest $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./apiserver/ ./manager/... ./syncer/ ./syncer/fairqueue/ ./syncer/kubeletproxy/ ./syncer/dns/ ./test/bench/

# The upstream e2e suite (k8s.io/kubernetes/test/e2e v1.36.3) from module source, the ginkgo
# CLI that runs it in parallel, and the programs of the suite's images: agnhost, nonewprivs,
# sample-apiserver, etcd (all static). The build tag keeps the suite out of `go vet ./...`;
# it is vetted here instead.
conformance-build: ## Build bin/e2e.test, bin/ginkgo and the image programs (agnhost, nnp, sample-apiserver, etcd)
	@hack/install-conformance-deps.sh
	$(GO) test -c -tags conformance -o $(BIN)/e2e.test ./conformance/e2e
	$(GO) vet -tags conformance ./conformance/e2e
	$(GO) build -o $(BIN)/ginkgo github.com/onsi/ginkgo/v2/ginkgo
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/agnhost k8s.io/kubernetes/test/images/agnhost
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/nnp k8s.io/kubernetes/test/images/nonewprivs
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/sample-apiserver k8s.io/sample-apiserver
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/etcd ./cmd/etcd

CONFORMANCE_KUBECONFIG ?= $(DATA_DIR)/demo.kubeconfig
CONFORMANCE_PARALLEL ?= 2
# The suite's hostNetwork/hostPort tests need a tenant that may run such pods: the demo tenant's
# policy is set to privileged first (vnest's default is baseline).
conformance: build conformance-build ## Full conformance run against the demo tenant of a running `make run` (see docs/conformance.md)
	$(BIN)/vnest kubectl --kubeconfig $(DATA_DIR)/super.kubeconfig -n default patch virtualcluster demo --type merge \
		-p '{"spec":{"policy":{"podSecurityLevel":"privileged"}}}'
	$(BIN)/vnest conformance --kubeconfig $(CONFORMANCE_KUBECONFIG) --super-data-dir $(DATA_DIR) \
		--parallel $(CONFORMANCE_PARALLEL) --artifacts _output/conformance

images: build ## Build the local images as tarballs into _output/images
	$(BIN)/vnest images build --out _output/images

generate: ## Generate deepcopy code for api/
	$(GO) tool controller-gen object paths=./api/...

manifests: ## Generate the CRD YAML from api/ into manifests/crd
	$(GO) tool controller-gen crd paths=./api/... output:crd:dir=./manifests/crd
	$(GO) tool controller-gen rbac:roleName=vnest-manager paths=./manager/... output:rbac:dir=./manifests/rbac

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## Remove build output (not the data dir)
	rm -rf $(BIN) _output
