# troupe's Makefile. `make` (or `make help`) lists the targets; a target or
# variable documents itself with a trailing `## text`. On a variable line write
# no space before `##`: make keeps whitespace before a comment in the value.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Go's official install location is a fallback after whatever is on PATH.
export PATH := $(PATH):/usr/local/go/bin

GO      ?= go
GOFMT   ?= gofmt

# libcontainer needs cgo: nsenter is C, seccomp links libseccomp. Without the
# seccomp tag the build succeeds but every spec with seccomp fails at start.
# runc's libpathrs tag stays out: Debian 12 has no such C library.
export CGO_ENABLED := 1
TAGS         ?= seccomp nomsgpack## Go build tags for build, vet and test
BUILDFLAGS   ?=## extra flags for go build, e.g. -trimpath
LDFLAGS      ?=## go build -ldflags, e.g. '-s -w'
TESTFLAGS    ?=## extra flags for go test, e.g. '-run TestStart -v'
TEST_TIMEOUT ?= 25m## go test -timeout
PKGS         ?= ./...## packages to vet and test

BIN_DIR := bin
BINARY  := $(BIN_DIR)/troupe
# The engine: the slim program that runs libcontainer and is every
# container's init, embedded in troupe (cmd/troupe/internal/engine) with the
# build tag engine and a go build -overlay that maps the package's
# troupe-engine, which is never in the tree, to the binary built here.
ENGINE         := $(BIN_DIR)/troupe-engine
ENGINE_EMBED   := cmd/troupe/internal/engine/troupe-engine
ENGINE_OVERLAY := $(BIN_DIR)/engine-overlay.json

# Defaults of `make run`; the same as the daemon's own defaults.
TROUPE_ROOT   ?= /var/lib/troupe## daemon --root for make run
TROUPE_STATE  ?= /run/troupe## daemon --state for make run
TROUPE_LISTEN ?= unix:///run/troupe/troupe.sock## daemon --listen for make run
RUNFLAGS      ?=## extra daemon flags for make run

# CRIU in a private prefix, from the first Debian suite (forky, sid, trixie,
# then the system's own) whose criu passes `troupe check-criu`, a dump and
# restore under a deadline: which CRIU works depends on the kernel (on 6.18
# trixie's 4.1.1 hangs on every dump, Debian 12's 3.17 fails from 6.13 on);
# see hack/README-criu.md.
CRIU_PREFIX ?= /opt/troupe/criu## where make criu installs CRIU (wrapper in bin/criu)
BENCH_N       ?= 1000## containers per benchmark run
BENCH_COMPARE ?= crun,runc,containerd## runtimes benchmarked side by side with troupe
BENCH_RUNS    ?= 3## runs of the all-at-once benchmark (medians are reported)
BENCHFLAGS    ?=## extra flags for troupe bench
FUZZTIME   ?= 100000x## how much make fuzz (and so make test) fuzzes request decoding: a count (Nx), see the fuzz target

# Debian packages troupe needs: libseccomp-dev (cgo seccomp; pulls in
# pkg-config), busybox-static (test rootfs), iptables (CRIU's network lock),
# jq and curl (scripts and manual API calls), a C toolchain for cgo, and
# docker-registry (the real registry the image pull tests push to) and
# skopeo (the image tests read and write its OCI archives).
DEB_PACKAGES ?= libseccomp-dev busybox-static iptables jq curl gcc libc6-dev docker-registry skopeo## Debian packages make deps ensures

# The Kubernetes control plane of the node agent's tests (kubelet/, a module
# of its own): built from hack/kube-build by hack/kube-binaries.sh into a
# cache outside the checkout, run against Debian's etcd. Neither make test
# nor CI builds it yet: a cold build takes minutes (4 to 16 measured).
TROUPE_KUBE_CACHE ?=## where make kube-binaries keeps its builds, a directory per version (empty: troupe-kube under XDG_CACHE_HOME, else ~/.cache)
KUBE_DEB_PACKAGES ?= etcd-server containernetworking-plugins## Debian packages make kube-test ensures
KUBE_TEST_TIMEOUT ?= 10m## go test -timeout of make kube-test
KUBE_PKGS ?= ./...## packages of kubelet/ that make test and make kube-test run (empty: none)
KUBE_BENCH_PODS ?= 1000## replicas make kube-bench scales to
export TROUPE_KUBE_CACHE

# make kube-up: a local cluster of one troupe node (kubelet/cmd/troupe-kube-up).
KUBE_UP_DIR      ?= /run/troupe-kube-up## state directory of make kube-up: logs, data, its kubeconfig (make kube-down removes it)
KUBE_UP_REGISTRY ?= 127.0.0.1:5000## loopback address of make kube-up's registry, which serves busybox:1
KUBE_UP_FLAGS    ?=## extra flags for troupe-kube-up up, e.g. '--pod-cidr 10.90.0.0/21 --bridge troupe-kup1'

.PHONY: help
help: ## show this help
	@echo 'Usage: make [target] [VARIABLE=value ...]'
	@echo
	@echo 'Targets:'
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo 'Variables:'
	@awk 'BEGIN { FS = "## " } /^[A-Z_]+ *\?=.*## / { split($$1, v, " *[?]= *"); printf "  %-13s %s%s\n", v[1], $$2, (v[2] == "" ? "" : " [" v[2] "]") }' $(MAKEFILE_LIST)

# install-debs installs the Debian packages $(1) that are missing, as root;
# otherwise it names them and fails.
define install-debs
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
		echo "deps: not a Debian system; make sure these (or their equivalents) are installed: $(1)" >&2; \
		exit 0; \
	fi; \
	missing=""; \
	for p in $(1); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "deps: missing Debian packages:$$missing" >&2; \
		echo "deps: install them as root: sudo make $@ (or: sudo apt-get install$$missing)" >&2; \
		exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing
endef

.PHONY: deps
deps: ## install missing Debian packages (needs root; a no-op when all are there)
	$(call install-debs,$(DEB_PACKAGES))

.PHONY: build
build: deps ## build bin/troupe (cgo, seccomp), with bin/troupe-engine embedded
	$(GO) build -tags '$(TAGS)' $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(ENGINE) ./cmd/troupe-engine
	printf '{"Replace":{"%s":"%s"}}\n' '$(abspath $(ENGINE_EMBED))' '$(abspath $(ENGINE))' >$(ENGINE_OVERLAY)
	$(GO) build -tags '$(TAGS) engine' -overlay $(ENGINE_OVERLAY) $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/troupe

.PHONY: test
test: deps criu kube-deps kube-binaries ## vet and the tree checks, run all tests with the race detector (root; starts real containers), the node agent's against a real control plane, then fuzz
	$(GO) vet -tags '$(TAGS)' $(PKGS)
	GO='$(GO)' TAGS='$(TAGS)' ./hack/check-imports.sh
	./hack/check-tree.sh
	CRIU_PREFIX=$(CRIU_PREFIX) TROUPE_REQUIRE_CRIU=1 TROUPE_REQUIRE_REGISTRY=1 $(GO) test -race -tags '$(TAGS)' -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS)
	$(MAKE) --no-print-directory kube-check
	$(MAKE) --no-print-directory fuzz

.PHONY: kube-deps
kube-deps: ## install the Debian packages of make kube-test (root; a no-op when all are there)
	$(call install-debs,$(KUBE_DEB_PACKAGES))

.PHONY: kube-binaries
kube-binaries: ## build kube-apiserver, -controller-manager, -scheduler and kubectl, unless built (cold: 4-16 min)
	./hack/kube-binaries.sh

.PHONY: kube-test
kube-test: build kube-deps kube-binaries ## vet and test kubelet/ against a real control plane and troupe daemons on loopback (root; make test runs it too)
	$(MAKE) --no-print-directory kube-check

.PHONY: kube-tools
kube-tools: ## build the node agent bin/troupe-kubelet and bin/troupe-kube-up
	cd kubelet && $(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(abspath $(BIN_DIR))/troupe-kubelet ./cmd/troupe-kubelet
	cd kubelet && $(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(abspath $(BIN_DIR))/troupe-kube-up ./cmd/troupe-kube-up

.PHONY: kube-up
kube-up: build kube-deps kube-binaries kube-tools ## start a local control plane and a troupe node in the background (root; a no-op when up); the last line is export KUBECONFIG=...
	$(BIN_DIR)/troupe-kube-up --dir $(KUBE_UP_DIR) up --troupe $(abspath $(BINARY)) --registry $(KUBE_UP_REGISTRY) $(KUBE_UP_FLAGS)

.PHONY: kube-down
kube-down: kube-tools ## stop what make kube-up started, pods included, and remove it all (a no-op when nothing runs)
	$(BIN_DIR)/troupe-kube-up --dir $(KUBE_UP_DIR) down

.PHONY: kube-bench
kube-bench: build kube-deps kube-binaries ## scale a Deployment from 0 to KUBE_BENCH_PODS on one troupe node, then the same pods through troupe directly (root; bench/README.md)
	cd kubelet && TROUPE_REQUIRE_KUBE=1 TROUPE_REQUIRE_REGISTRY=1 TROUPE_BIN=$(abspath $(BINARY)) TROUPE_KUBE_BENCH_PODS=$(KUBE_BENCH_PODS) \
		$(GO) test -run '^$$' -bench '^BenchmarkScaleDeployment$$' -benchtime 1x -timeout 40m ./internal/agent

.PHONY: kube-check
kube-check:
ifneq ($(strip $(KUBE_PKGS)),)
	cd kubelet && $(GO) vet $(KUBE_PKGS)
	cd kubelet && TROUPE_REQUIRE_KUBE=1 TROUPE_REQUIRE_REGISTRY=1 TROUPE_BIN=$(abspath $(BINARY)) $(GO) test -race -timeout $(KUBE_TEST_TIMEOUT) $(TESTFLAGS) $(KUBE_PKGS)
endif

.PHONY: fuzz
# A count, not a duration: when a duration ends, Go's fuzz coordinator may
# report its own deadline as a failure ("context deadline exceeded" with no
# crasher, go.dev/issue/75804), most of all on a loaded machine. 100000
# inputs take about 20 s on the CI machines. Minimizing each new interesting
# input may take up to a minute by default: 2 s is plenty for a request body.
fuzz: deps ## fuzz the API's request decoding with FUZZTIME inputs
	$(GO) test -tags '$(TAGS)' -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./http/

.PHONY: criu
criu: build ## install a CRIU that passes troupe check-criu into CRIU_PREFIX (root; leaves the system's apt and libc alone)
	TROUPE=$(abspath $(BINARY)) ./hack/install-criu.sh $(CRIU_PREFIX)

# The Debian packages of the runtimes in BENCH_COMPARE (containerd runs
# its containers with runc): what make bench-deps installs. A name troupe
# bench does not know is left to it to reject.
comma := ,
bench_compare  = $(filter crun runc containerd,$(subst $(comma), ,$(BENCH_COMPARE)))
BENCH_PACKAGES = $(sort $(bench_compare) $(if $(filter containerd,$(bench_compare)),runc))

.PHONY: bench-deps
bench-deps: ## install the runtimes in BENCH_COMPARE from Debian (root; a no-op when all are there)
	$(if $(strip $(BENCH_PACKAGES)),./hack/install-compare.sh $(BENCH_PACKAGES),@echo 'bench-deps: BENCH_COMPARE is empty, nothing to install')

.PHONY: bench
bench: build bench-deps ## benchmark BENCH_N starts on a private daemon, side by side with BENCH_COMPARE (root)
	@set -e; d=$$(mktemp -d /tmp/troupe-bench.XXXXXX); \
	mount -t tmpfs -o mode=0755 troupe-bench $$d; mkdir -p $$d/tmp; \
	$(BINARY) daemon --root $$d/root --state $$d/state --listen unix://$$d/troupe.sock \
		--cgroup-parent /troupe-bench-daemon >$$d/daemon.log 2>&1 & pid=$$!; \
	trap 'kill -TERM $$pid; wait $$pid; rmdir /sys/fs/cgroup/*/troupe-bench-daemon 2>/dev/null; umount $$d; rmdir $$d' EXIT; \
	for i in $$(seq 100); do [ -S $$d/troupe.sock ] && break; sleep 0.1; done; \
	export TMPDIR=$$d/tmp; \
	echo "== $(BENCH_N) starts, 10 at a time"; \
	$(BINARY) --address unix://$$d/troupe.sock bench --n $(BENCH_N) --concurrency 10 --density --warm \
		--compare $(BENCH_COMPARE) --plot $(BIN_DIR)/bench-c10.svg $(BENCHFLAGS); \
	sleep 20; \
	echo "== $(BENCH_N) starts, all at once, medians of $(BENCH_RUNS) runs"; \
	$(BINARY) --address unix://$$d/troupe.sock bench --n $(BENCH_N) --runs $(BENCH_RUNS) --density --warm \
		--compare $(BENCH_COMPARE) --plot $(BIN_DIR)/bench-burst.svg $(BENCHFLAGS)

.PHONY: check
check: ## gofmt, go vet, the import-direction check and no build output in the tree
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path './vendor/*' -not -path '*/testdata/*'); \
	if [ -n "$$files" ]; then \
		unformatted=$$($(GOFMT) -l $$files); \
		if [ -n "$$unformatted" ]; then \
			echo "gofmt: these files need formatting (run gofmt -w):" >&2; \
			echo "$$unformatted" >&2; \
			exit 1; \
		fi; \
	fi
	$(GO) vet -tags '$(TAGS)' $(PKGS)
	GO='$(GO)' TAGS='$(TAGS)' ./hack/check-imports.sh
	./hack/check-tree.sh

.PHONY: run
run: build criu ## build, then run the daemon in the foreground (root)
	$(BINARY) daemon --root $(TROUPE_ROOT) --state $(TROUPE_STATE) --listen $(TROUPE_LISTEN) $(RUNFLAGS)

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN_DIR)
