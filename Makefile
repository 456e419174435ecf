# cqrs-knative: CQRS as Go functions on Knative.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: all build test test-go deps deps-run deps-bench bench bench-large run vet clean images deploy undeploy

all: build

## build: compile the deployables into bin/
build:
	$(GO) build -o $(BIN)/ ./functions/cmd/cqrs-write ./functions/cmd/cqrs-read ./functions/cmd/cqrs-ui ./functions/tools/cqrs-local

## run: the whole stack locally: Redis master + replica, write, read, UI on :8080
##      (CLUSTER=1: a Redis Cluster of three masters and three replicas instead)
run: deps-run build
	$(BIN)/cqrs-local $(if $(filter 1 yes true on,$(CLUSTER)),-cluster)

## deps: install what the tests need (redis-server, redis-tools, chromium, curl) where possible
deps:
	@./.ci/deps.sh test

# deps-run: install what running needs (redis-server) where possible
deps-run:
	@./.ci/deps.sh run

# deps-bench: install what the benchmark needs (redis-server, redis-benchmark) where possible
deps-bench:
	@./.ci/deps.sh bench

## test: install what the tests need, then run every test
test: deps vet test-go

vet:
	$(GO) vet ./...

# Every benchmark runs once too (-benchtime 1x), so that one that no longer holds fails here.
# Then the suites that reach the functions from outside run again on a Redis Cluster of
# three masters and three replicas (CQRS_TEST_CLUSTER=1): the tests that depend on where
# records are kept (those that check only the process' own answers ran above).
CLUSTER_TESTS = ^(TestReadYourWrites|TestBinaries|TestCreateThenQuery|TestRedeliveryStoresOnce|TestHostileEventsRefused|TestBrowser|TestOriginalEndpoints|TestBrowserSaveWithUnknownOutcome)$$
test-go:
	$(GO) test -count=1 -timeout 8m -bench . -benchtime 1x ./...
	CQRS_TEST_CLUSTER=1 $(GO) test -count=1 -timeout 5m -run '$(CLUSTER_TESTS)' \
		./functions/blackbox/api ./functions/blackbox/events ./functions/blackbox/browser

## bench: the functions against the smallest Go function on the same Redis
bench: deps-bench build
	$(GO) run ./functions/tools/cqrs-bench $(BENCH_FLAGS)

## bench-large: the same, and reads and memory at 1M records
bench-large: deps-bench build
	$(GO) run ./functions/tools/cqrs-bench -large $(BENCH_FLAGS)

clean:
	rm -rf $(BIN)

# Cluster targets (images, deploy, undeploy) live beside the manifests.
-include knative/deploy.mk
# The local Knative cluster and the end-to-end tests on it (make e2e).
-include knative/cluster/cluster.mk
-include knative/func/func.mk
