# mcp-proxy: the reference MCP proxy, its conformance harness and its docs.
#
#   make conformance   run the documented scenarios against the stack (the main job)
#   make test          everything CI runs: formatting, vet, staticcheck, unit tests
#                      with the race detector, and the scenarios
#   make demo          run the whole stack on this machine and walk one user through it
#   make build         build the binaries into bin/
#   make site          build the docs site into site/public from the latest conformance
#                      results (running the scenarios first when there are none)
#   make site-test     check the built site in headless chromium (links, badges, console)
#   make docs          regenerate the tables in docs/ that the code owns

SHELL        := /bin/bash
GO           ?= go
BUILD        ?= $(CURDIR)/build
# STACK picks the stack the scenarios run against: auto (containers when a
# Docker engine answers, else local), local (in-process) or containers.
STACK        ?= auto
# REPORTS is where a conformance run writes its reports.
REPORTS      ?= $(BUILD)/conformance
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# GOTESTFLAGS is passed to go test for the scenarios (make test adds -race).
GOTESTFLAGS  ?=

.PHONY: all build conformance test lint fmt-check vet staticcheck shipped-deps unit demo bench clean site site-test docs

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

# The scenarios write cucumber JSON, JUnit XML, the results manifest and a
# summary under $(REPORTS) (build/conformance); the last lines say which
# stack ran and "N passed, N failed".
conformance:
	@mkdir -p $(REPORTS)
	@rm -f $(REPORTS)/summary.txt
	@status=0; \
	$(GO) test $(GOTESTFLAGS) -count=1 -timeout=30m -v -run '^TestConformance$$' ./features \
		-args -stack=$(STACK) -build-dir=$(REPORTS) || status=$$?; \
	if [ -s $(REPORTS)/summary.txt ]; then \
		echo "conformance: ran on the $$(sed -n 's/^ *"stack": "\([a-z]*\)".*/\1/p' $(REPORTS)/manifest.json | head -1) stack (STACK=$(STACK))"; \
		cat $(REPORTS)/summary.txt; \
	else echo "0 passed, 0 failed: the run ended before writing its results"; status=1; fi; \
	exit $$status

# The scenarios run on the stack make conformance picks and, when that was
# the container stack, on the in-process stack too (reports in
# build/conformance-local).
test: lint unit
	$(MAKE) conformance GOTESTFLAGS=-race
	@if grep -q '"stack": "containers"' $(REPORTS)/manifest.json; then \
		$(MAKE) conformance STACK=local GOTESTFLAGS=-race REPORTS=$(BUILD)/conformance-local; \
	else echo "make test: the scenarios ran on the local stack only (STACK=$(STACK); containers need a Docker engine)"; fi
	$(MAKE) site
	$(MAKE) site-test

lint: fmt-check vet staticcheck shipped-deps

# The binary ships no harness code: nothing under internal/ may be among
# cmd/mcp-proxy's dependencies.
shipped-deps:
	@mod=$$($(GO) list -m); bad=$$($(GO) list -deps ./cmd/mcp-proxy | grep "^$$mod/internal/" || true); \
	if [ -n "$$bad" ]; then echo "cmd/mcp-proxy depends on harness packages:"; echo "$$bad"; exit 1; fi

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

# Unit tests of every package; the scenarios run in the conformance target.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v -e '/features$$' -e '/internal/sitetest$$')
	$(GO) test -race -count=1 -run '^TestHarness' ./features

demo:
	$(GO) run ./cmd/mcp-stack $(DEMOFLAGS)

# What one warm request costs, in one run on this machine (DESIGN §5.9):
# the load generator, the upstream, the bare Go TLS hop and mcp-proxy are
# separate processes, each one's CPU read from /proc. Direct, the bare hop
# and mcp-proxy alternate, at concurrency 1, 16 and 64, against the MCP Go
# SDK echo server and a canned answer, over HTTP/1.1 and HTTP/2 on the
# client leg; the table gives medians of 5 rounds, the budget's checks
# follow. Every answer is checked, and so are the proxy's token cache hits.
# About four minutes; BENCHFLAGS=-h lists the knobs (-strict fails on a
# missed budget).
BENCHFLAGS ?=
bench:
	@mkdir -p $(BUILD)/bench/bin
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BUILD)/bench/bin/ ./cmd/mcp-proxy ./internal/bench/cmd/...
	@set -o pipefail; $(BUILD)/bench/bin/bench -bin $(BUILD)/bench/bin $(BENCHFLAGS) | tee $(BUILD)/bench.txt

# The docs site (Hugo, a tool of site/go.mod; D2 renders the diagrams). Its
# generated inputs go to site/generated, the site to site/public; an example
# that no passing scenario ran fails the build.
site:
	@if [ ! -s $(REPORTS)/manifest.json ]; then \
		echo "site: no conformance results in $(REPORTS); running the scenarios first"; \
		$(MAKE) conformance || exit $$?; \
	fi
	@start=$$(date +%s); manifests=$(REPORTS)/manifest.json; \
	if [ "$(REPORTS)" = "$(BUILD)/conformance" ] && [ -s $(BUILD)/conformance-local/manifest.json ] && \
	   [ $(BUILD)/conformance-local/manifest.json -nt $(REPORTS)/manifest.json ]; then \
		manifests=$$manifests,$(BUILD)/conformance-local/manifest.json; fi; \
	echo "site: results from $$manifests"; \
	$(GO) run ./internal/docgen/cmd/docgen site -manifest $$manifests -out site/generated && \
	$(GO) -C site tool hugo --cleanDestinationDir --destination public && \
	echo "site: built site/public in $$(( $$(date +%s) - start ))s"

# The browser test of the built site (Debian's chromium, headless, via
# chromedp), and the build's refusal of unverified examples and broken links.
site-test:
	$(GO) test -count=1 -v ./internal/sitetest \
		-args -public=$(CURDIR)/site/public -screenshots=$(BUILD)/site/screenshots

docs:
	$(GO) run ./internal/docgen/cmd/docgen tables

clean:
	rm -rf $(BUILD) bin site/public site/generated
