"Every notebook in nbs/ runs top to bottom (nbdev's `test_nb`, in-process), skipping cells flagged with pyproject's tst_flags."
import shutil
from pathlib import Path

import fastprogress.fastprogress as fp
import nbdev.test as nbt
import pytest
from nbdev.config import get_config

NBS = Path(__file__).parent.parent / 'nbs'
NOTEBOOKS = sorted(NBS.glob('[0-9]*.ipynb'))


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 5, f"expected the quickstart and the seed notebooks in {NBS}, found {[p.name for p in NOTEBOOKS]}"


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(nb, monkeypatch, tmp_path):
    monkeypatch.setattr(fp, 'NO_BAR', True)
    skip = get_config(path=NBS).tst_flags  # pyproject's [tool.nbdev]
    # test_nb runs a notebook in its own folder: a copy, so what it writes (its GIFs) stays out of the source tree
    copy = tmp_path / 'nbs'
    shutil.copytree(NBS, copy, ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
    shutil.copy(NBS.parent / 'pyproject.toml', tmp_path)  # nbdev reads its settings from the folders above
    # No time limit here (a busy machine would fail it): how long each notebook takes is in `--durations`' list.
    ok, _ = nbt.test_nb(copy / nb.name, skip_flags=skip.split() if isinstance(skip, str) else skip)
    assert ok, f"{nb.name} failed (traceback above)"
