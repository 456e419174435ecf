# knative/func's tooling, built from the versions pinned in knative/func/go.mod (a
# module of its own, so that func's dependencies never enter the product's go.mod).
# Included by the root Makefile; run from the repository root.
#
#   make func-cli     bin/func: knative/func's CLI (func invoke, func version), and
#                     bin/kn-func: the same binary under the name kn looks for, so
#                     that with bin/ on PATH `kn func invoke ...` runs it as a plugin.
#                     Rebuilt only when knative/func/go.mod or go.sum change.
#   make func-write   bin/cqrs-write-funcgo: cqrs-write as `func build` makes it,
#                     func's instanced-http scaffolding (knative/func/scaffold) on the
#                     knative.dev/func-go runtime, linking the root package's New().
#   make test-func    vet and test the tool module (part of make test).
#   make func-tidy    bring knative/func/go.mod in step after go.mod changed.
#
# docs/func.md says what each path builds and serves.

FUNC_DIR := knative/func
FUNC_VERSION = $(shell cd $(FUNC_DIR) && $(GO) list -m -f '{{.Version}}' knative.dev/func)

.PHONY: func-cli func-write test-func func-tidy

func-cli: $(BIN)/func $(BIN)/kn-func

$(BIN)/func: $(FUNC_DIR)/go.mod $(FUNC_DIR)/go.sum
	cd $(FUNC_DIR) && $(GO) build -o $(CURDIR)/$(BIN)/func \
		-ldflags "-X knative.dev/func/pkg/app.vers=$(FUNC_VERSION)" knative.dev/func/cmd/func

$(BIN)/kn-func: $(BIN)/func
	ln -sf func $@

func-write:
	cd $(FUNC_DIR) && $(GO) build -o $(CURDIR)/$(BIN)/cqrs-write-funcgo ./scaffold

test-func:
	cd $(FUNC_DIR) && $(GO) vet ./... && $(GO) test -count=1 ./...

func-tidy:
	cd $(FUNC_DIR) && $(GO) mod tidy

# make test: the tool module's own tests, and func's CLI built before the Go tests
# (functions/blackbox/funcpath runs it) so that its first, long build is not timed
# as a test.
test: test-func
test-go: func-cli
