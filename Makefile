# cometchat-exporter
GO       ?= go
BINARY   ?= cometchat_exporter
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w \
	-X github.com/prometheus/common/version.Version=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(REVISION) \
	-X github.com/prometheus/common/version.Branch=$(BRANCH) \
	-X github.com/prometheus/common/version.BuildUser=$(shell whoami)@$(shell hostname) \
	-X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
FUZZTIME ?= 60s
STATICCHECK ?= v0.8.2

.PHONY: all build test lint fuzz bench demo docker clean

all: lint test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) .

# The test command: formatting, vet, and every test with the race detector,
# including the promtool rule tests and the end-to-end run against a real
# Prometheus (promtool and prometheus must be on PATH; under CI=true their
# absence fails the tests).
test: lint
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

# Longer fuzzing of the decoders: make fuzz FUZZTIME=10m
fuzz:
	$(GO) test ./cometchat -run XXX -fuzz FuzzDecodePage -fuzztime $(FUZZTIME)
	$(GO) test ./cometchat -run XXX -fuzz FuzzDecodeCall -fuzztime $(FUZZTIME)
	$(GO) test ./cometchat -run XXX -fuzz FuzzParseErrorBody -fuzztime $(FUZZTIME)

# Benchmarks quoted in BENCHMARKS.md.
bench:
	$(GO) test -run XXX -bench 'IdlePoll|Strategies' -benchtime 20x ./accountant
	$(GO) test -run XXX -bench 'DecodeAndCount' -benchmem -count 3 ./accountant
	$(GO) test -run XXX -bench 'StateWriteBusyPoll' -benchtime 200x -count 3 ./accountant
	$(GO) test -run XXX -bench 'Metrics100Apps' -benchmem -count 5 ./collector
	$(GO) test -run XXX -bench 'Backfill20k' -benchtime 1x .

demo:
	$(GO) run . --demo

docker:
	docker build -t cometchat-exporter:$(VERSION) .

clean:
	rm -f $(BINARY)
