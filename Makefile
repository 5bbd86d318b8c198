# make demo / make test do all set-up: .venv is (re)built when missing or older than the package metadata.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test bench lint docs clean

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

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check fastfit tests bench docs

# the documentation site into site/ (README, nbs/*.ipynb, the API reference); open site/index.html, no server needed
docs: $(STAMP)
	$(BIN)/python docs/build_docs.py --site site

clean:
	rm -rf $(VENV) fit.gif fit.html site
