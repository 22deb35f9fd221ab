# cometchat-exporter
GO       ?= go
BINARY   ?= cometchat_exporter
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# The version without a leading v, as the Prometheus exporters print it.
VERSION_NUM := $(patsubst v%,%,$(VERSION))
LDFLAGS  := -s -w \
	-X github.com/prometheus/common/version.Version=$(VERSION_NUM) \
	-X github.com/prometheus/common/version.Revision=$(REVISION) \
	-X github.com/prometheus/common/version.Branch=$(BRANCH) \
	-X github.com/prometheus/common/version.BuildUser=$(shell whoami)@$(shell hostname) \
	-X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
FUZZTIME ?= 60s
STATICCHECK ?= v0.8.2
# Prometheus 3 for the end-to-end tests (as prometheus3 on PATH), built
# from the Go module proxy once (about 9 minutes) and cached in TOOLS.
PROMETHEUS3 ?= v0.316.0
TOOLS       ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cometchat-exporter
PROMETHEUS3_DIR := $(TOOLS)/prometheus-$(PROMETHEUS3)
# Helm for the chart's tests (deploy/), built the same way (about 3 minutes).
HELM     ?= v3.22.0
HELM_DIR := $(TOOLS)/helm-$(HELM)

.PHONY: all build test lint fuzz bench bench-heap demo docker clean prometheus3 prometheus3-dir helm helm-dir release kube-test

# The chart applied to a real kube-apiserver (etcd from Debian's etcd-server
# on PATH): kube-apiserver built from the k8s.io/kubernetes module and the
# Prometheus Operator's CRDs generated from its API types, both cached in
# TOOLS (about 10 minutes once). Not part of make test: see README.
KUBE     ?= v1.37.2
KUBE_DIR := $(TOOLS)/kube-$(KUBE)
OPERATOR ?= v0.95.2
CRDS_DIR := $(TOOLS)/crds-$(OPERATOR)
DEPLOY_SKIPS := set COMETCHAT_KUBE_TEST=1 (make kube-test) to apply the chart to a kube-apiserver

all: lint test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) .

# The test command: formatting, vet, and every test with the race detector,
# including the promtool rule tests and the end-to-end runs against real
# Prometheus 2 and 3 servers (promtool, prometheus and prometheus3 must be on
# PATH; under CI=true their absence fails the tests).
# Each run ends with a summary of the skipped tests and why (testsum);
# under CI=true a skip for a missing tool fails it.
test: lint
	$(GO) build -o .build/testsum ./internal/testsum
	$(GO) test -race -count=1 -json ./... | .build/testsum
	cd deploy && $(GO) test -count=1 -json ./... | ../.build/testsum -allow "$(DEPLOY_SKIPS)"

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

prometheus3: $(PROMETHEUS3_DIR)/prometheus3

$(PROMETHEUS3_DIR)/prometheus3:
	GOBIN=$(PROMETHEUS3_DIR) $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS3)
	mv $(PROMETHEUS3_DIR)/prometheus $@

helm: $(HELM_DIR)/helm

$(HELM_DIR)/helm:
	GOBIN=$(HELM_DIR) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM)

helm-dir:
	@echo $(HELM_DIR)

# Where prometheus3 is, for PATH: export PATH="$$PATH:$$(make -s prometheus3-dir)"
prometheus3-dir:
	@echo $(PROMETHEUS3_DIR)

# Longer fuzzing of the decoders: make fuzz FUZZTIME=10m
fuzz:
	$(GO) test ./cometchat -run XXX -fuzz FuzzDecodePage -fuzztime $(FUZZTIME)
	$(GO) test ./cometchat -run XXX -fuzz FuzzDecodeCall -fuzztime $(FUZZTIME)
	$(GO) test ./cometchat -run XXX -fuzz FuzzParseErrorBody -fuzztime $(FUZZTIME)
	$(GO) test ./webhook -run XXX -fuzz FuzzDecode -fuzztime $(FUZZTIME)

# Benchmarks quoted in BENCHMARKS.md.
bench:
	$(GO) test -run XXX -bench 'IdlePoll|Strategies' -benchtime 20x ./accountant
	$(GO) test -run XXX -bench 'DecodeAndCount' -benchmem -count 3 ./accountant
	$(GO) test -run XXX -bench 'StateWriteBusyPoll' -benchtime 200x -count 3 ./accountant
	$(GO) test -run XXX -bench 'Metrics100Apps' -benchtime 20x -count 3 ./collector
	$(GO) test -run XXX -bench 'Metrics1000Apps' -benchtime 10x ./collector
	$(GO) test -run XXX -bench 'RenderApp' -benchtime 200x -count 3 ./collector
	$(GO) test -run XXX -bench 'Backfill20k' -benchtime 1x .
	$(GO) test -run XXX -bench 'EndToCounted' -benchtime 1x ./accountant
	$(GO) test -run XXX -bench 'RememberedIDs' -benchtime 1x -count 3 ./accountant
	$(GO) test -run XXX -bench 'TenApps50k' -benchtime 1x -count 2 .
	$(GO) test -run XXX -bench 'BusyTraffic' -benchtime 1x ./accountant

# The live heap over 30 minutes of busy traffic, with no state file, a
# state file and failing state writes, the three at once (BenchmarkHeapFlat).
HEAP_FOR ?= 30m
bench-heap:
	$(GO) test -c -o $(TOOLS)/accountant.test ./accountant
	for s in none file failing; do \
	  $(TOOLS)/accountant.test -test.run XXX -test.bench "HeapFlat/state=$$s\$$" -test.benchtime 1x -bench.heap-for=$(HEAP_FOR) > $(TOOLS)/heap-$$s.txt 2>&1 & \
	done; wait; grep -h Benchmark $(TOOLS)/heap-*.txt

demo:
	$(GO) run . --demo

kube-test: helm
	deploy/kube/build-apiserver.sh $(KUBE) $(KUBE_DIR)
	deploy/kube/crds.sh $(OPERATOR) $(CRDS_DIR)
	cd deploy && PATH="$$PATH:$(KUBE_DIR):$(HELM_DIR)" CI=true COMETCHAT_KUBE_TEST=1 COMETCHAT_CRDS_DIR=$(CRDS_DIR)/crds \
	  $(GO) test -count=1 -run TestChartOnAPIServer -v ./...

# Release archives laid out as promu (the Prometheus projects' build tool)
# lays them out: NAME-VERSION.OS-ARCH.tar.gz holding a directory of that
# name with the binary and README.md, and sha256sums.txt beside them. The
# version comes from the git tag (VERSION=v1.2.3 -> 1.2.3).
PLATFORMS ?= linux/amd64 linux/arm64 linux/armv7 darwin/amd64 darwin/arm64 windows/amd64 freebsd/amd64
DIST      ?= .tarballs
release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; arm=; \
	  case $$arch in armv*) arm=$${arch#armv}; arch=arm;; esac; \
	  name=$(BINARY)-$(VERSION_NUM).$$os-$$arch$${arm:+v$$arm}; ext=; \
	  if [ $$os = windows ]; then ext=.exe; fi; \
	  mkdir -p $(DIST)/$$name; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/$$name/$(BINARY)$$ext .; \
	  cp README.md $(DIST)/$$name/; \
	  tar -C $(DIST) -czf $(DIST)/$$name.tar.gz $$name; rm -rf $(DIST)/$$name; \
	done
	cd $(DIST) && sha256sum *.tar.gz > sha256sums.txt

# The image, tagged with the version and latest (the README runs :latest).
docker:
	docker build --build-arg VERSION=$(VERSION_NUM) -t cometchat-exporter:$(VERSION) -t cometchat-exporter:latest .

clean:
	rm -f $(BINARY)
