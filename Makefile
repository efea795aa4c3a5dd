# mcp-proxy: the reference MCP proxy, its conformance harness and its docs.
#
#   make conformance   run the documented scenarios against the stack (the main job)
#   make test          everything CI runs: formatting, vet, staticcheck, unit tests
#                      with the race detector, and the scenarios
#   make demo          run the whole stack on this machine and walk one user through it
#   make build         build the binaries into bin/

SHELL        := /bin/bash
GO           ?= go
BUILD        ?= $(CURDIR)/build
# STACK picks the stack the scenarios run against: local (in-process).
STACK        ?= local
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# GOTESTFLAGS is passed to go test for the scenarios (make test adds -race).
GOTESTFLAGS  ?=

.PHONY: all build conformance test lint fmt-check vet staticcheck unit demo clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

# The scenarios write cucumber JSON, JUnit XML, the results manifest and a
# summary under build/conformance; the last line is "N passed, N failed".
conformance:
	@mkdir -p $(BUILD)/conformance
	@rm -f $(BUILD)/conformance/summary.txt
	@status=0; \
	$(GO) test $(GOTESTFLAGS) -count=1 -v -run '^TestConformance$$' ./features \
		-args -stack=$(STACK) -build-dir=$(BUILD)/conformance || status=$$?; \
	if [ -s $(BUILD)/conformance/summary.txt ]; then cat $(BUILD)/conformance/summary.txt; \
	else echo "0 passed, 0 failed: the run ended before writing its results"; status=1; fi; \
	exit $$status

test: lint unit
	$(MAKE) conformance GOTESTFLAGS=-race

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

# Unit tests of every package; the scenarios run in the conformance target.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/features$$')

demo:
	$(GO) run ./cmd/mcp-stack $(DEMOFLAGS)

clean:
	rm -rf $(BUILD) bin
