# make demo / make test do all set-up: .venv is (re)built when missing or older than the package metadata.
# `make demo` installs what the library needs, `make test` adds the test tools, the browser front ends, the docs tools and
# ffmpeg (the `dev` extra), `make docs` the docs tools.
#
# torch: constraints.txt pins the versions the suite is tested with. pip takes torch from wherever it is configured to
# look: from PyPI on Linux that is the CUDA build (about 3 GB with its nvidia-* packages); for the CPU-only build (about
# 200 MB) point pip at PyTorch's CPU index first, e.g. `PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make demo`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# --no-compile: no byte-compiling of every installed file (torch has thousands); Python compiles what it imports
PIP     := $(BIN)/python -m pip install -q --no-compile -c constraints.txt
# Python's bytecode for what the library and its tests import, compiled once after an install, two processes at a time
# (tools/compile_imports.py says why): the suite starts about 30 processes that import fastfit (workers, kernels, servers,
# scripts), and each would compile torch, fastai and scikit-learn from source again where PYTHONDONTWRITEBYTECODE is set.
# `--tests tests` collects the suite once too, so that each xdist worker reads pytest's rewritten test modules.
PRECOMPILE := tools/compile_imports.py
TESTMODS := pytest xdist hypothesis nbdev.test nbclient nbconvert ipykernel.kernelapp matplotlib_inline.backend_inline ipywidgets \
	sklearn.datasets imageio_ffmpeg playwright.sync_api jupyterlab.labapp notebook.app mkdocs.commands.build \
	mkdocs_jupyter.plugin mkdocstrings_handlers.python material accelerate fastai.distributed torch.distributed.run
# One stamp per set of extras installed, so `make demo` after `make test` installs nothing more.
STAMP    := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
DOCSTAMP := $(VENV)/.installed-docs
# A second environment with the oldest versions pyproject.toml declares (`make test-oldest`, run by .ci/run): the library's
# dependencies at their lower bounds, the light extras (mp4, widgets) and the test tools; no JupyterLab, Playwright, MkDocs
# or accelerate (those tests skip, saying why).
OLD      := .venv-oldest
OLDSTAMP := $(OLD)/.installed
OLDDEPS  := $(OLD)/.installed-deps
OLDEXTRAS := test,mp4,widgets
# The suite on every core, a test file to a worker: what a file's tests share (a module fixture: a site build, a Jupyter
# server or kernel, a torchrun launch) is made once, not once in each worker. (`--dist loadgroup`'s xdist_group marks do
# not group with pytest 9 and pytest-xdist 3.8: xdist renames `item._nodeid`, which pytest 9 no longer reads.)
# The slowest tests are listed.
PYTEST   := -m pytest -n auto --dist loadfile --durations=15
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-oldest env env-oldest env-oldest-deps bench lint docs nbs clean

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e .
	$(BIN)/python $(PRECOMPILE) fastfit.all
	touch $(STAMP)

$(DEVSTAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e '.[dev]'
	$(BIN)/python $(PRECOMPILE) fastfit.all --tests tests & p=$$!; $(BIN)/python $(PRECOMPILE) $(TESTMODS) && wait $$p
	touch $(DEVSTAMP) $(STAMP) $(DOCSTAMP)

$(DOCSTAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e '.[docs]'
	touch $(DOCSTAMP) $(STAMP)

demo: $(STAMP)
	$(BIN)/fastfit demo

test: $(DEVSTAMP)
	$(BIN)/python $(PYTEST)

# Its dependencies first (with their bytecode), then the package (editable, without dependencies): the first step writes
# nothing in the checkout, so it may run while .venv installs (.ci/run does); the second writes fastfit.egg-info, as
# .venv's install does.
$(OLDDEPS): pyproject.toml constraints.txt .ci/lower_bounds.py
	test -x $(OLD)/bin/python || $(PY) -m venv $(OLD)
	$(OLD)/bin/python -m pip install -q --upgrade pip
	$(OLD)/bin/python -m pip install -q --no-compile -c constraints.txt $$($(PY) .ci/lower_bounds.py --extras $(OLDEXTRAS))
	$(OLD)/bin/python $(PRECOMPILE) fastai.basics & p=$$!; $(OLD)/bin/python $(PRECOMPILE) $(TESTMODS) && wait $$p
	touch $(OLDDEPS)

$(OLDSTAMP): $(OLDDEPS)
	$(OLD)/bin/python -m pip install -q --no-compile --no-deps -c constraints.txt -e '.[$(OLDEXTRAS)]'
	$(OLD)/bin/python $(PRECOMPILE) fastfit.all --tests tests
	touch $(OLDSTAMP)

# The environments alone, without running anything (.ci/run installs the second's dependencies while the first installs).
env: $(DEVSTAMP)
env-oldest: $(OLDSTAMP)
env-oldest-deps: $(OLDDEPS)

# The suite again, with the oldest declared dependencies: a lower bound that lies turns this red. Every test but the
# notebooks' runs (tests/test_notebooks.py, a third of the suite's time): they call the public functions the other
# tests call, and `make test` runs them.
test-oldest: $(OLDSTAMP)
	$(OLD)/bin/python -m pip list 2>/dev/null | grep -iE '^(fastai|fastcore|fastprogress|torch|numpy|matplotlib|pillow) '
	$(OLD)/bin/python $(PYTEST) --ignore=tests/test_notebooks.py

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(DEVSTAMP)
	$(BIN)/ruff check fastfit tests bench docs tools

# the documentation site into site/ (README, docs/pages, nbs/*.ipynb, the API reference); open site/index.html, no server needed
docs: $(DOCSTAMP)
	$(BIN)/python docs/build_docs.py --site site

# the notebooks in nbs/ executed in place with a real kernel: their stored outputs made again by today's code
nbs: $(DEVSTAMP)
	$(BIN)/python tools/run_notebooks.py

clean:
	rm -rf $(VENV) $(OLD) fit.gif fit.html site
