"FitProgress: fastprogress's NO_BAR switch is honoured, and a stdout that is no terminal gets no carriage-return bars."
import sys

import fastprogress.fastprogress as fp
import pytest

from fastfit.all import regression_learner, synth_linear


def fit_output(capsys, epochs=3):
    learn = regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=10))
    learn.fit(epochs)
    return capsys.readouterr().out


@pytest.mark.parametrize('no_bar, tty', [(True, True), (False, False), (True, False)])
def test_no_bars_unless_wanted(capsys, monkeypatch, no_bar, tty):
    monkeypatch.setattr(fp, 'NO_BAR', no_bar)
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: tty)
    out = fit_output(capsys)
    assert '\r' not in out and '\u2588' not in out, repr(out[:200])
    lines = out.splitlines()
    assert lines[0].split() == ['epoch', 'train_loss', 'valid_loss', 'time'] and len(lines) == 4  # the table stays


def test_a_terminal_gets_its_bar(capsys, monkeypatch):
    monkeypatch.setattr(fp, 'NO_BAR', False)
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: True)
    out = fit_output(capsys)
    assert '\r' in out and 'train_loss' in out


def test_a_notebook_gets_no_output_that_shows_nothing(monkeypatch):
    """In a notebook fastprogress shows its CSS as an output of its own before the first bar: an empty gap in the
    notebook (seven of the shipped notebooks had one). FitProgress leaves it out; the bar and the table still show."""
    IPython_display = pytest.importorskip('IPython.display')
    if not hasattr(fp, 'show_styles'): pytest.skip('this fastprogress shows no styles of its own')
    shown = []
    class Handle:
        def update(self, obj): shown.append(obj)
    def display(*objs, display_id=None, **kwargs):
        shown.extend(objs)
        return Handle()
    monkeypatch.setattr(IPython_display, 'display', display)
    monkeypatch.setattr(fp, 'IN_NOTEBOOK', True)
    monkeypatch.setattr(fp, 'NO_BAR', False)
    monkeypatch.setattr(fp, '_style_shown', False)
    import fastfit.progress
    monkeypatch.setattr(fastfit.progress, 'master_bar', fp.NBMasterBar)
    monkeypatch.setattr(fastfit.progress, 'progress_bar', fp.NBProgressBar)
    regression_learner(synth_linear(n=100, seed=0).dataloaders(bs=10)).fit(2)
    html = [o.data if isinstance(o, IPython_display.HTML) else str(o) for o in shown]  # IPython's HTML, or fastprogress's tags
    assert any('<progress' in h for h in html) and any('train_loss' in h for h in html), html[:3]
    assert not [h for h in html if h.strip().startswith('<style')], 'an output holding only CSS'
