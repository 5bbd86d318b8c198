import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# jsonschema (which nbformat, nbclient, nbconvert and the Jupyter server import) builds rfc3987_syntax's 39 Earley
# grammars when it is imported, if that package is installed (JupyterLab's jsonschema[format-nongpl] brings it): ~3 s of
# CPU in every process of the suite that reads a notebook. They only check strings of the formats "iri" and
# "iri-reference", which no schema the suite validates against uses (nbformat's, jupyter_events'). Marked missing, the
# import skips them, as jsonschema does wherever the package is not installed. `NO_IRI_GRAMMARS` does the same in a
# Python process the suite starts (the Jupyter server).
sys.modules.setdefault('rfc3987_syntax', None)
NO_IRI_GRAMMARS = "import sys; sys.modules.setdefault('rfc3987_syntax', None)"
os.environ.setdefault('MPLBACKEND', 'Agg')
# One torch thread a process (kernels, CLI runs and torchrun ranks inherit it): the suite runs in several workers
# (pytest-xdist) on a few cores, where torch's thread pools would wait on each other (a 6-parameter solve took 2.8 s
# with 2 threads on a busy machine, 0.03 s with one). Behaviour is the same; speed is measured in bench/, not here.
os.environ.setdefault('OMP_NUM_THREADS', '1')
import fastprogress.fastprogress as fp  # noqa: E402
import matplotlib  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

matplotlib.use('Agg')
import torch  # noqa: E402

torch.set_num_threads(1)  # in case torch was imported before this file set OMP_NUM_THREADS
fp.NO_BAR = True  # no \r progress bars in test logs
# Hypothesis keeps its example database and caches in `.hypothesis/` of the working directory: not in the source tree.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix='fastfit-hypothesis-')
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
settings.register_profile('fastfit', database=None)
settings.load_profile('fastfit')

ROOT = Path(__file__).parents[1]
# Browser tests run Debian's chromium (never Playwright's own download), headless and offline.
CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']


# `make test` runs the suite with `--dist loadfile`: a file's tests run in one worker, and files are handed to the workers
# in collection order. The slowest files (seconds a worker spends on each) come first, so that no worker starts a long
# file while the others have nothing left to do.
SLOWEST_FILES = ('test_notebooks.py', 'test_display.py', 'test_docs.py', 'test_readable.py', 'test_fastai_contract.py',
                 'test_live.py', 'test_jupyter.py', 'test_browser.py')


def pytest_collection_modifyitems(items):
    first = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: first.get(item.path.name, len(first)))  # stable: the other files keep their order


@pytest.fixture(scope='session')
def browser():
    "Debian's headless chromium driven by Playwright, one for the session; the test skips, saying why, where it cannot start."
    if not CHROMIUM.exists(): pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError: pytest.skip("Playwright's Python package is missing: pip install -e '.[dev]'")
    with sync_playwright() as p:
        try: b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        except Exception as e: pytest.skip(f"{CHROMIUM} did not start: {e}")
        yield b
        b.close()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close('all')


@pytest.fixture(autouse=True)
def _cwd_outside_the_source_tree(tmp_path_factory, monkeypatch):
    "Every test runs in a fresh folder: what fastai writes under `learn.path` (models/, export.pkl) lands there."
    monkeypatch.chdir(tmp_path_factory.mktemp('cwd'))


@pytest.fixture
def fitted():
    "A linear fit of synth_linear, 100 full-batch steps, quietly."
    from fastfit.all import regression_learner, synth_linear
    s = synth_linear(n=100, seed=42)
    learn = regression_learner(s.dataloaders(bs=None))
    with learn.no_bar(), learn.no_logging(): learn.fit(100)
    return learn


# -- a clean checkout stays clean: the suite fails if it left anything new in the source tree ---------------------------
# Not the tests' doing: the environments, Python's and ruff's caches, and pytest's own (.ci/run runs a second suite, with
# the oldest dependencies, alongside this one: whichever ends first leaves .pytest_cache for the other to find).
_IGNORE = ('.venv', '__pycache__', '.egg-info', '.ruff_cache', '.pytest_cache')
# Source a developer may be editing while the suite runs: a change to these is not the suite's doing.
_EDITED = ('.py', '.md', '.toml', '.ini', '.txt', '.cfg', '.in', 'Makefile', '.ci/run')


def _tree_state():
    "Paths git reports as new, ignored or changed (folders as one entry), or None outside a git checkout."
    if shutil.which('git') is None: return None
    r = subprocess.run(['git', 'status', '--porcelain', '--ignored'], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0: return None
    lines = [ln for ln in r.stdout.splitlines() if not any(k in ln for k in _IGNORE)]
    # New and ignored files always count (models/, .hypothesis/, export.pkl); changed tracked ones unless source (a GIF).
    return {ln for ln in lines if ln[:2] in ('??', '!!') or not ln.rstrip().endswith(_EDITED)}


def pytest_sessionstart(session): session.config._tree_before = _tree_state()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)
    before = getattr(session.config, '_tree_before', None)
    after = _tree_state()
    if before is None or after is None: return
    new = sorted(after - before)
    if new:
        print(f"\nThe test suite wrote into the source tree {ROOT}: {new} (tests must write only to temporary folders)")
        session.exitstatus = 1
