# zoo: one HTTP/1.1 service, many concurrency models. `make help` lists the targets.

MODEL ?= pool
LISTEN ?= 127.0.0.1:8080
CARGO ?= cargo

.PHONY: help run build test lint conformance bench-c10k clean

help:
	@echo "make run MODEL=pool LISTEN=127.0.0.1:8080   serve with one model"
	@echo "make test                                   fmt check, clippy, every test against every model"
	@echo "make conformance                            replay ../shared/conformance against every model"
	@echo "make build                                  release binaries in target/release"
	@echo "make compare / compare-quick                every model through every scenario: results/<time>/"
	@echo "make bench                                  plaintext, pipelined and c10k with nginx ratios; bench-loadgen; bench-floor"
	@echo "make bench-loadgen / bench-floor            wrk beside loadtest; thread beside its floor and nginx"
	@echo "make bench-c10k / soak / fuzz               idle-connection RSS, 1M-request soak, fuzz the core"
	@echo "make twins / twins-test                     the Python originals in peers/python/.venv, and their tests"
	@echo "make docker-build / docker-compare / docker-test / docker-clean"
	@echo "make swarm-compare / swarm-test             models and N generator replicas on a Docker Swarm"

build:
	$(CARGO) build --release --workspace

run:
	$(CARGO) run --release -p servers -- --model=$(MODEL) --listen $(LISTEN)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint fuzz-check
	$(CARGO) test --workspace

# The fuzz crate sits outside the workspace (it runs on nightly); compiling it here keeps its
# targets from rotting between fuzzing runs.
.PHONY: fuzz-check
fuzz-check:
	$(CARGO) check --manifest-path fuzz/Cargo.toml --bins

conformance:
	$(CARGO) test -p servers --test conformance -- --nocapture

# 10,000 idle keep-alive connections: RSS per connection and a further client's latency.
bench-c10k:
	$(CARGO) bench -p servers --bench c10k -- epoll uring poll

clean:
	$(CARGO) clean

# --- docker: every model in its own container under equal limits (docker/README.md) ---------
# DOCKER_PATH=local (default: host cargo build on a debootstrap base, no registry needed) or
# registry (docker/Dockerfile, multi-stage, pulls rust:1-bookworm and debian:bookworm-slim).
DOCKER_PATH ?= local

.PHONY: docker-build docker-compare docker-clean docker-test swarm-compare swarm-test

docker-build:
	DOCKER_PATH=$(DOCKER_PATH) CARGO=$(CARGO) docker/build.sh

docker-compare:
	DOCKER_PATH=$(DOCKER_PATH) CARGO=$(CARGO) docker/compare.sh

docker-clean:
	docker/clean.sh

docker-test:
	CARGO=$(CARGO) docker/test.sh

# Docker Swarm (docker/README.md, "Several generator hosts"): the models and ZOO_REPLICAS loadtest
# replicas on labelled nodes, their histograms merged exactly. swarm-test makes a one-node swarm
# on loopback when the engine is in none, and leaves it afterwards.
swarm-compare:
	DOCKER_PATH=$(DOCKER_PATH) CARGO=$(CARGO) docker/swarm.sh

swarm-test:
	DOCKER_PATH=$(DOCKER_PATH) CARGO=$(CARGO) docker/swarm.sh --test

# Fuzz the sans-IO core (fuzz/README.md): each target FUZZ_SECONDS, one libFuzzer process.
# Needs the nightly toolchain and `cargo install cargo-fuzz`.
FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# Soak (issue 9): SOAK_REQUESTS per model against every model (ZOO_MODELS=a,b to choose), server
# pinned to CPU 0 and loadtest to CPU 1; prints descriptors and RSS before and after.
SOAK_REQUESTS ?= 1000000

.PHONY: soak
soak:
	$(CARGO) build --release -p loadtest
	SOAK_REQUESTS=$(SOAK_REQUESTS) $(CARGO) bench -p servers --bench soak

# --- compare: every model through every scenario, one report (loadtest/README.md) ------------
# MODELS=all (what `zoo --list-models` prints) or a list such as thread,pool,tokio:threads=1;
# SCENARIOS=all or a list; COMPARE_ARGS for anything else (--out DIR, --duration 10s, ...).
# The nginx baseline joins when nginx is installed. The report lands in results/<UTC time>/.
MODELS ?= all
SCENARIOS ?= all
COMPARE_ARGS ?=
BASELINE ?= $(if $(or $(wildcard /usr/sbin/nginx),$(shell command -v nginx 2>/dev/null)),--baseline nginx,)

.PHONY: compare compare-quick bench-loadgen bench-floor

compare: build
	target/release/loadtest compare --models $(MODELS) --scenarios $(SCENARIOS) $(BASELINE) $(COMPARE_ARGS)

compare-quick: build
	target/release/loadtest compare --quick --models $(MODELS) --scenarios $(SCENARIOS) $(BASELINE) $(COMPARE_ARGS)

# The performance table: every model and nginx on `/` at 64 keep-alive connections, server and
# generator pinned apart, ratios to nginx in the report; 10,000 idle connections' RSS beside
# nginx's; then loadtest's own CPU per request beside wrk's, and thread beside its floor.
.PHONY: bench
# The event loops run one thread each, as the targets name them (tokio --threads 1 is asyncio's
# shape); with the server pinned to one CPU the other models default to one thread or worker too.
BENCH_MODELS ?= thread,pool,coroutine:threads=1,tokio:threads=1,async-std,smol:threads=1,fork,prefork,select,poll,epoll,nonblocking,sigio,uring:threads=1

bench: build
	$(CARGO) build --release -p servers --example thread_floor
	target/release/loadtest compare --models $(BENCH_MODELS) --scenarios plaintext,pipelined,c10k --concurrency 64 --rounds 3 \
		--baseline nginx --out results/bench-$$(date -u +%Y%m%dT%H%M%SZ) $(COMPARE_ARGS)
	LOADTEST=target/release/loadtest loadtest/bench-loadgen.sh
	servers/bench-floor.sh

# wrk and loadtest side by side against one pinned nginx (loadtest/bench-loadgen.sh).
bench-loadgen:
	$(CARGO) build --release -p loadtest
	LOADTEST=target/release/loadtest loadtest/bench-loadgen.sh

# nginx, the least a thread per connection can do, zoo's thread and epoll side by side, each
# alone on one pinned CPU (servers/bench-floor.sh).
bench-floor:
	$(CARGO) build --release -p loadtest -p servers --bins --example thread_floor
	servers/bench-floor.sh

# --- the Python originals the models mirror (peers/python/README.md) -------------------------
# twins makes peers/python/.venv and installs the pinned requirements into it; twins-test starts
# every twin and a debug zoo (built here) and holds them to one table of answers.
PYTHON ?= python3
TWINS_VENV := peers/python/.venv

.PHONY: twins twins-test

twins: $(TWINS_VENV)/.installed

$(TWINS_VENV)/.installed: peers/python/requirements.txt
	@echo "twins: installing peers/python/requirements.txt into $(TWINS_VENV) with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(TWINS_VENV)
	$(TWINS_VENV)/bin/pip install --quiet --disable-pip-version-check --only-binary=:all: -r peers/python/requirements.txt
	@touch $@
	@echo "twins: ready; run one with $(TWINS_VENV)/bin/python peers/python/run.py --list"

twins-test: twins
	$(CARGO) build -p servers
	cd peers/python && .venv/bin/python -m unittest discover -s tests -v
