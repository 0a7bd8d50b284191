# Set-up and everyday commands. Each target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: demo test bench bench-smoke clean

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

test: $(VENV)/.installed-dev+milvus
	$(PY) -m pytest

bench: $(VENV)/.installed-dev+bench
	$(PY) -m bench

bench-smoke: $(VENV)/.installed-dev+bench
	$(PY) -m bench --smoke

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
