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
