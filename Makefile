# zoo: one HTTP/1.1 service, many concurrency models. `make help` lists the targets.

MODEL ?= pool
LISTEN ?= 127.0.0.1:8080
CARGO ?= cargo

.PHONY: help run build test lint conformance clean

help:
	@echo "make run MODEL=pool LISTEN=127.0.0.1:8080   serve with one model"
	@echo "make test                                   fmt check, clippy, every test against every model"
	@echo "make conformance                            replay ../shared/conformance against every model"
	@echo "make build                                  release binaries in target/release"

build:
	$(CARGO) build --release --workspace

run:
	$(CARGO) run --release -p servers -- --model=$(MODEL) --listen $(LISTEN)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint
	$(CARGO) test --workspace

conformance:
	$(CARGO) test -p servers --test conformance -- --nocapture

clean:
	$(CARGO) clean

# --- docker: every model in its own container under equal limits (docker/README.md) ---------
# DOCKER_PATH=local (default: host cargo build on a debootstrap base, no registry needed) or
# registry (docker/Dockerfile, multi-stage, pulls rust:1-bookworm and debian:bookworm-slim).
DOCKER_PATH ?= local

.PHONY: docker-build docker-compare docker-clean docker-test

docker-build:
	DOCKER_PATH=$(DOCKER_PATH) CARGO=$(CARGO) docker/build.sh

docker-compare:
	DOCKER_PATH=$(DOCKER_PATH) CARGO=$(CARGO) docker/compare.sh

docker-clean:
	docker/clean.sh

docker-test:
	CARGO=$(CARGO) docker/test.sh

# --- compare: every model through every scenario, one report (loadtest/README.md) ------------
# MODELS=all (what `zoo --list-models` prints) or a list such as thread,pool,tokio:threads=1;
# SCENARIOS=all or a list; COMPARE_ARGS for anything else (--out DIR, --duration 10s, ...).
# The nginx baseline joins when nginx is installed. The report lands in results/<UTC time>/.
MODELS ?= all
SCENARIOS ?= all
COMPARE_ARGS ?=
BASELINE ?= $(if $(or $(wildcard /usr/sbin/nginx),$(shell command -v nginx 2>/dev/null)),--baseline nginx,)

.PHONY: compare compare-quick bench-loadgen

compare: build
	target/release/loadtest compare --models $(MODELS) --scenarios $(SCENARIOS) $(BASELINE) $(COMPARE_ARGS)

compare-quick: build
	target/release/loadtest compare --quick --models $(MODELS) --scenarios $(SCENARIOS) $(BASELINE) $(COMPARE_ARGS)

# wrk and loadtest side by side against one pinned nginx (loadtest/bench-loadgen.sh).
bench-loadgen:
	$(CARGO) build --release -p loadtest
	LOADTEST=target/release/loadtest loadtest/bench-loadgen.sh
