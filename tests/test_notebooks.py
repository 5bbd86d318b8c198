"Every notebook in nbs/ runs top to bottom (nbdev's `test_nb`, in-process), skipping cells flagged with pyproject's tst_flags."
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
def test_notebook_runs(nb, monkeypatch):
    monkeypatch.setattr(fp, 'NO_BAR', True)
    skip = get_config(path=NBS).tst_flags  # pyproject's [tool.nbdev]
    ok, secs = nbt.test_nb(nb, skip_flags=skip.split() if isinstance(skip, str) else skip)
    assert ok, f"{nb.name} failed (traceback above)"
    assert secs < 60, f"{nb.name} took {secs:.0f} s; mark long cells `#| slow`"
