# embtune: fine-tune sentence-embedding models from Go over libtorch.
#
#   make deps        fetch libtorch, the model and Go modules (safe to re-run)
#   make train       the main job: fine-tune on the Debian FAQ, print before/after
#   make test        vet and run the test suite (what CI runs)
#   make build       build bin/embtune
#   make bench       go test -bench in bench/
#   make bench-peer  the same texts through sentence-transformers, with ratios
#   make golden      regenerate testdata/golden from the real peers

SHELL := /bin/bash
PYTHON ?= python3
GO ?= go
MODEL ?= third_party/models/all-MiniLM-L6-v2
export PYTHON

# cgo flags for the libtorch that tools/libtorch-env.sh finds.
-include third_party/libtorch.mk
GO_BUILD_FLAGS = $(if $(strip $(GO_TAGS)),-tags $(GO_TAGS),)

.PHONY: deps libtorch model gomod build test vet train bench bench-peer golden clean

deps: libtorch model gomod

# Fetch the PyPI wheel only when neither LIBTORCH nor a Python torch is there.
libtorch:
	@if [ -z "$${LIBTORCH:-}$${LIBTORCH_LIB:-}" ] && ! $(PYTHON) -c 'import torch' >/dev/null 2>&1; then \
		tools/fetch-libtorch.sh; fi
	@mkdir -p third_party
	@tools/libtorch-env.sh > third_party/libtorch.mk.tmp && mv third_party/libtorch.mk.tmp third_party/libtorch.mk
	@sed -n 1p third_party/libtorch.mk

model:
	@tools/fetch-model.sh

gomod:
	@$(GO) mod download

build: deps
	$(MAKE) --no-print-directory bin/embtune

bin/embtune: FORCE
	@mkdir -p bin
	$(GO) build $(GO_BUILD_FLAGS) -o bin/embtune ./cmd/embtune

FORCE:

vet: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './third_party/*'))" || \
		{ echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(MAKE) --no-print-directory gotest-vet

gotest-vet:
	$(GO) vet $(GO_BUILD_FLAGS) ./...

test: vet
	$(MAKE) --no-print-directory gotest

gotest:
	$(GO) test $(GO_BUILD_FLAGS) -count=1 -timeout 30m ./...

train: build
	@echo "make train arrives with the trainer (issue: fine-tuning). For now: bin/embtune similarity --model $(MODEL) \"a\" \"b\""

bench: deps
	$(MAKE) --no-print-directory gobench

gobench:
	cd bench && $(GO) test $(GO_BUILD_FLAGS) -run '^$$' -bench . -benchtime 3x -count 3 .

bench-peer: build
	tools/golden/run.sh bench

golden: build
	tools/golden/run.sh corpus
	bin/embtune export --model $(MODEL) --torchscript third_party/tmp/model.pt
	tools/golden/run.sh torchscript third_party/tmp/model.pt

clean:
	rm -rf bin third_party/libtorch.mk
