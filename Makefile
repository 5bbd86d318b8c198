# make demo / make test do all set-up: .venv is (re)built when missing or older than the package metadata.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# A second environment with the oldest versions pyproject.toml declares (`make test-oldest`, run by .ci/run).
OLD      := .venv-oldest
OLDSTAMP := $(OLD)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-oldest bench lint docs nbs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# constraints pin torch to the local CPU build: without them pip pulls torch with GBs of CUDA packages
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fastfit demo

test: $(STAMP)
	$(BIN)/python -m pytest

$(OLDSTAMP): pyproject.toml constraints.txt .ci/lower_bounds.py
	test -x $(OLD)/bin/python || $(PY) -m venv $(OLD)
	$(OLD)/bin/python -m pip install -q --upgrade pip
	$(OLD)/bin/python -m pip install -q -c constraints.txt $$($(PY) .ci/lower_bounds.py) -e '.[dev]'
	touch $(OLDSTAMP)

# The suite again, with the oldest declared dependencies: a lower bound that lies turns this red.
test-oldest: $(OLDSTAMP)
	$(OLD)/bin/python -m pip list 2>/dev/null | grep -iE '^(fastai|fastcore|fastprogress|torch|numpy|matplotlib|pillow) '
	$(OLD)/bin/python -m pytest

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check fastfit tests bench docs tools

# the documentation site into site/ (README, nbs/*.ipynb, the API reference); open site/index.html, no server needed
docs: $(STAMP)
	$(BIN)/python docs/build_docs.py --site site

# the notebooks in nbs/ executed in place with a real kernel: their stored outputs made again by today's code
nbs: $(STAMP)
	$(BIN)/python tools/run_notebooks.py

clean:
	rm -rf $(VENV) $(OLD) fit.gif fit.html site
