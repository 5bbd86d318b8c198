"Every bad input fails at the boundary with a ValueError/TypeError that names the argument, the value seen and the fix."
import re

import numpy as np
import pytest
import torch

from fastfit.all import (
    AnimateFit,
    FuncModel,
    LinearModel,
    PolyModel,
    RegDataLoaders,
    lr_sweep,
    regression_learner,
    synth_linear,
    synth_multilinear,
    synth_poly,
)

X10, Y10 = np.arange(10.), 2 * np.arange(10.) + 1


def dls1(**kw):
    "One feature, 20 points, full batch, no validation."
    return synth_linear(n=20, seed=0).dataloaders(bs=None, valid_pct=0, **kw)


def raises(exc, f, *parts):
    "Call f, expect `exc`, and check every part (a literal) appears in the message; return the message."
    with pytest.raises(exc) as e: f()
    msg = str(e.value)
    for p in parts: assert p in msg, f"{p!r} not in {msg!r}"
    return msg


# --- data ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('gen', [synth_linear, synth_multilinear])
@pytest.mark.parametrize('n', [0, -5])
def test_n_not_positive(gen, n):
    raises(ValueError, lambda: gen(n=n), 'n must be an integer > 0', f'got {n}')


def test_n_not_integral_or_not_a_number():
    raises(ValueError, lambda: synth_linear(n=2.5), 'n must be an integer > 0', 'got 2.5', 'use 2')
    raises(TypeError, lambda: synth_linear(n='ten'), 'n must be an integer > 0', "'ten'", 'str')


@pytest.mark.parametrize('gen', [synth_linear, synth_multilinear, synth_poly])
def test_negative_noise(gen):
    raises(ValueError, lambda: gen(noise=-1.), 'noise must be a finite number >= 0', 'got -1.0')


def test_bad_generator_arguments():
    raises(ValueError, lambda: synth_linear(x_range=(1, -1)), 'x_range', 'low < high', '(1, -1)')
    raises(TypeError, lambda: synth_linear(x_range=('a', 'b')), 'x_range must be a pair of numbers', "('a', 'b')")
    raises(ValueError, lambda: synth_linear(dist='cauchy'), 'dist', "'normal'", "'uniform'", "'cauchy'")
    raises(TypeError, lambda: synth_poly(coeffs=('a', 1)), 'coeffs must be numbers', "('a', 1)")
    raises(ValueError, lambda: synth_poly(x=[0., float('nan')]), 'x holds 1 NaN/inf', 'drop or impute')


def test_x_y_lengths_differ():
    raises(ValueError, lambda: RegDataLoaders.from_arrays(np.zeros(5), np.zeros(4)),
           'x and y must have the same number of samples', 'x: 5', 'y: 4')
    raises(ValueError, lambda: RegDataLoaders.from_arrays(X10, Y10, valid=(np.zeros(3), np.zeros(2))),
           'x_valid and y_valid lengths differ', '3 and 2')


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('which', ['x', 'y'])
def test_nan_inf_in_data(bad, which):
    a = X10.copy(); a[3] = bad
    x, y = (a, Y10) if which == 'x' else (X10, a)
    raises(ValueError, lambda: RegDataLoaders.from_arrays(x, y), f'{which} holds 1 NaN/inf value(s)', 'row 3',
           'drop or impute those rows')
    # a tensor with NaN is refused just like an array
    raises(ValueError, lambda: RegDataLoaders.from_arrays(torch.as_tensor(x), torch.as_tensor(y)), f'{which} holds 1 NaN/inf')


@pytest.mark.parametrize('x, dtype', [(['a', 'b', 'c'], '<U1'), ([1, None, 3], 'object'), ({'a': 1}, 'object')])
def test_non_numeric_data(x, dtype):
    raises(TypeError, lambda: RegDataLoaders.from_arrays(x, [1., 2, 3]), 'x must be numeric', 'list of numbers',
           f'got dtype {dtype}')
    raises(TypeError, lambda: RegDataLoaders.from_arrays([1., 2, 3], x), 'y must be numeric')


def test_complex_and_wrongly_shaped_data():
    raises(TypeError, lambda: RegDataLoaders.from_arrays(torch.ones(3, dtype=torch.complex64), [1., 2, 3]),
           'x must be real numbers', 'complex64')
    raises(ValueError, lambda: RegDataLoaders.from_arrays(np.zeros((3, 2, 2)), np.zeros(3)), 'x must be 1-d (n,) or 2-d',
           '(3, 2, 2)')
    raises(ValueError, lambda: RegDataLoaders.from_arrays([], []), 'x is empty', 'at least one sample')
    raises(ValueError, lambda: RegDataLoaders.from_arrays(X10, np.zeros((10, 2))), 'y must have one target per sample', '(10, 2)')


@pytest.mark.parametrize('pct', [1, 1.5, -.1, float('nan')])
def test_valid_pct_outside_0_1(pct):
    raises(ValueError, lambda: RegDataLoaders.from_arrays(X10, Y10, valid_pct=pct), 'valid_pct must be in [0, 1)',
           f'got {float(pct)!r}', 'use 0 for no validation set')


def test_valid_pct_not_a_number():
    raises(TypeError, lambda: RegDataLoaders.from_arrays(X10, Y10, valid_pct='half'), 'valid_pct must be a number in [0, 1)',
           "'half'")


def test_a_bs_of_the_whole_training_set_is_full_batch():
    "10 samples, 20% held out: 8 train. fastai would drop a batch of 9 as incomplete and train on nothing: it is full batch."
    for bs in (8, 9, 64):
        dl = RegDataLoaders.from_arrays(X10, Y10, valid_pct=.2, bs=bs).train
        assert dl.full_batch and len(dl) == 1 and len(dl.one_batch()[0]) == 8
    dl = synth_linear(n=50).dataloaders().train  # the default bs=64 on 40 training samples
    assert dl.full_batch and len(dl) == 1 and [len(b[0]) for b in dl] == [40]
    assert len(RegDataLoaders.from_arrays(X10, Y10, valid_pct=.2, bs=7).train) == 1  # one batch of 7, one sample dropped
    raises(ValueError, lambda: RegDataLoaders.from_arrays(X10, Y10, bs=0), 'bs must be an integer > 0, got 0')


@pytest.mark.parametrize('bs, exc, parts', [(0, ValueError, ['bs must be an integer > 0', 'got 0']),
                                            (-4, ValueError, ['got -4']),
                                            (2.5, ValueError, ['got 2.5', 'use 2']),
                                            ('big', TypeError, ["'big'"])])
def test_bs_not_a_positive_int(bs, exc, parts):
    raises(exc, lambda: RegDataLoaders.from_arrays(X10, Y10, bs=bs), *parts)


# --- learner ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('lr', [0, -.1, float('nan'), float('inf')])
def test_lr_not_positive(lr):
    raises(ValueError, lambda: regression_learner(dls1(), lr=lr), 'lr must be a finite number > 0', f'got {lr!r}')


def test_lr_not_a_number():
    raises(TypeError, lambda: regression_learner(dls1(), lr='fast'), 'lr must be a finite number > 0', "'fast'")


def test_linear_model_inputs_do_not_match_features():
    # like seed 002's `m@x`: both shapes in the message
    msg = raises(ValueError, lambda: regression_learner(dls1(), model=LinearModel(n_in=2)),
                 'LinearModel(n_in=2, bias=True)', 'takes x of shape (n, 2)', 'x has shape (20, 1)', 'use LinearModel(n_in=1)')
    assert "must match the data's features" in msg
    d3 = RegDataLoaders.from_arrays(np.random.rand(30, 3), np.random.rand(30), valid_pct=0)
    raises(ValueError, lambda: regression_learner(d3, model=LinearModel(n_in=1)), '(n, 1)', '(30, 3)', 'LinearModel(n_in=3)')


def test_poly_model_on_several_features():
    d2 = synth_multilinear(n=20).dataloaders(bs=None, valid_pct=0)
    raises(ValueError, lambda: regression_learner(d2, model=PolyModel(2)), 'PolyModel(degree=2) takes x of shape (n, 1)',
           'x has shape (20, 2)', 'give x one column', 'LinearModel(n_in=2)')


def test_any_module_with_wrong_inputs():
    msg = raises(ValueError, lambda: regression_learner(dls1(), model=torch.nn.Linear(3, 1)),
                 'Linear(in_features=3', "the data's x of shape (20, 1)", '1 feature(s)', "make the model's inputs match")
    assert 'mat1 and mat2 shapes cannot be multiplied' in msg  # torch's own words, as in seed 002
    raises(ValueError, lambda: regression_learner(dls1(), model=FuncModel(lambda x, p: x @ p, torch.ones(3))),
           'FuncModel(<lambda>)', '(20, 1)')


def test_model_returning_wrong_shape():
    raises(ValueError, lambda: regression_learner(dls1(), model=torch.nn.Linear(1, 2)), 'returns predictions of shape (2, 2)',
           'y has shape (2, 1)', 'one prediction per row, shape (n, 1)')


def test_model_not_a_module_or_without_parameters():
    raises(TypeError, lambda: regression_learner(dls1(), model=lambda x: x), 'model must be a torch nn.Module', 'function')
    raises(ValueError, lambda: regression_learner(dls1(), model=torch.nn.Identity()), 'Identity()', 'has no parameters to fit')


def test_dls_of_the_wrong_kind():
    raises(TypeError, lambda: regression_learner((X10, Y10)), 'dls must be RegDataLoaders', 'RegDataLoaders.from_arrays', 'tuple')


def test_init_unknown_names():
    raises(ValueError, lambda: LinearModel(init={'q': 1.}), "init names ['q']", 'not parameters of this model',
           'its parameters are: w (1,), b ()')
    raises(ValueError, lambda: PolyModel(2, init={'c3': 1.}), "init names ['c3']", 'c2 (), c1 (), c0 ()')


def test_init_wrong_shapes():
    raises(ValueError, lambda: LinearModel(init={'w': [1., 2.]}), "init['w'] has shape (2,)", 'parameter w has shape (1,)',
           'give 1 value(s)')
    raises(ValueError, lambda: LinearModel(n_in=2, init=[1., 2., 3., 4.]), 'init has 4 values but the model has 3',
           'w (2,), b ()', 'a flat tensor of all of them in that order, or a dict by name')


def test_init_not_numeric_or_not_finite():
    raises(TypeError, lambda: LinearModel(init={'w': 'one'}), "init['w'] must be numeric", "'one'")
    raises(ValueError, lambda: LinearModel(init={'b': float('nan')}), "init['b'] holds NaN/inf", 'start from finite values')
    raises(ValueError, lambda: PolyModel(1, init=[1., float('inf')]), 'init holds NaN/inf')


def test_bad_model_arguments():
    raises(ValueError, lambda: LinearModel(n_in=0), 'n_in must be a positive int', 'got 0')
    raises(ValueError, lambda: PolyModel(degree=-1), 'degree must be an int >= 0', 'got -1')
    raises(TypeError, lambda: FuncModel('f', torch.ones(2)), 'f must be a function f(x, params)', 'str')
    raises(ValueError, lambda: FuncModel(lambda x, p: x, None), 'FuncModel needs init')


def test_loss_not_a_scalar():
    def sq(p, t): return (p - t) ** 2
    raises(ValueError, lambda: regression_learner(dls1(), loss_func=sq), "loss_func 'sq' must return a scalar tensor",
           'got (2, 1)', 'reduce it, e.g. with .mean()')
    raises(ValueError, lambda: regression_learner(dls1(), loss_func=lambda p, t: 1.0), 'must return a scalar tensor', 'got float')


def test_loss_that_fails_or_is_not_callable():
    raises(ValueError, lambda: regression_learner(dls1(), loss_func=lambda p, t: p @ t), "loss_func '<lambda>' failed",
           'shape (2, 1)', 'take (pred, targ) and return a scalar tensor')
    raises(TypeError, lambda: regression_learner(dls1(), loss_func='mse'), 'loss_func must be callable', "'mse'")


# --- exports ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('fname', ['fit.gif', 'fit.html', 'fit.png'])
def test_export_before_any_fit(tmp_path, fname):
    learn = regression_learner(dls1())
    raises(ValueError, lambda: learn.save_animation(tmp_path / fname), 'save_animation needs a fit first',
           'call learn.fit(n) before')
    raises(ValueError, lambda: learn.animate(), 'animate needs a fit first')
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_fit_that_diverged_at_its_first_step(tmp_path, capsys):
    "It did fit, so 'needs a fit first' would mislead: the error says the loss was NaN/inf at once, and what to try."
    learn = regression_learner(dls1(), lr=1e30)
    learn.fit(3)
    assert learn.diverged is not None and learn.param_history.step == 0
    raises(ValueError, lambda: learn.animate(), 'animate has no step to draw', 'diverged (NaN/inf) at the first step',
           'smaller lr')
    runs = lr_sweep(dls1(), (.1, 1e30), epochs=3)
    assert 'diverged' in capsys.readouterr().out
    raises(ValueError, lambda: runs.frames(3), "run lr=1e+30 has no step to draw", 'smaller lr')
    assert list(tmp_path.iterdir()) == []


def test_export_without_history(tmp_path):
    learn = regression_learner(dls1(), history=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    raises(ValueError, lambda: learn.save_animation(tmp_path / 'a.gif'), 'needs the parameter history', 'history=True')


@pytest.mark.parametrize('fname', ['fit.mp5', 'fit', 'fit.GIFF', 'fit.gif.bak'])
def test_unknown_suffix_lists_known_ones(fitted, tmp_path, fname):
    suffix = re.search(r'(\.[^.]*)?$', fname).group(0).lower()
    for f in (lambda: fitted.save_animation(tmp_path / fname), lambda: AnimateFit(fname)):
        raises(ValueError, f, f'unknown file suffix {suffix!r}', 'use one of .gif, .html, .mp4, .png')
    assert list(tmp_path.iterdir()) == []


def test_bad_export_settings(fitted, tmp_path):
    raises(ValueError, lambda: fitted.save_animation(tmp_path / 'a.gif', fps=0), 'fps must be > 0', 'got 0')
    raises(ValueError, lambda: fitted.save_animation(tmp_path / 'a.gif', frames=0), 'frames must be >= 1', 'got 0')
    raises(ValueError, lambda: fitted.save_animation(tmp_path / 'a.gif', panels=('nope',)), "unknown panels ['nope']",
           "choose from ('fit', 'surface', 'loss', ")  # more panels may follow
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_no_file(fitted, tmp_path, monkeypatch):
    "Atomicity seen from outside: a writer that fails half way leaves neither the file nor a temp file."
    from pathlib import Path
    calls = []
    def broken_write_bytes(self, data):
        calls.append(self)
        open(self, 'wb').write(data[:10])  # partly written...
        raise OSError('disk full')  # ...then the disk fills up
    monkeypatch.setattr(Path, 'write_bytes', broken_write_bytes)
    with pytest.raises(OSError, match='disk full'): fitted.save_animation(tmp_path / 'fit.gif', frames=3, dpi=20)
    assert calls and list(tmp_path.iterdir()) == []
    # an existing file is kept whole when overwriting it fails
    monkeypatch.undo()
    good = fitted.save_animation(tmp_path / 'fit.gif', frames=3, dpi=20).read_bytes()
    monkeypatch.setattr(Path, 'write_bytes', broken_write_bytes)
    with pytest.raises(OSError): fitted.save_animation(tmp_path / 'fit.gif', frames=3, dpi=20)
    assert [p.name for p in tmp_path.iterdir()] == ['fit.gif'] and (tmp_path / 'fit.gif').read_bytes() == good


def test_html_export_failure_leaves_no_file(fitted, tmp_path, monkeypatch):
    from pathlib import Path
    def broken_write_text(self, *a, **kw):
        open(self, 'w').write('<!DOCTYPE html><html>')
        raise OSError('disk full')
    monkeypatch.setattr(Path, 'write_text', broken_write_text)
    with pytest.raises(OSError, match='disk full'): fitted.save_animation(tmp_path / 'fit.html', frames=3, dpi=20)
    assert list(tmp_path.iterdir()) == []


def test_export_into_missing_folder(fitted, tmp_path):
    with pytest.raises(FileNotFoundError): fitted.save_animation(tmp_path / 'no' / 'fit.gif', frames=2, dpi=20)
    assert list(tmp_path.iterdir()) == []


def test_no_bare_assert_for_user_errors():
    "`python -O` strips asserts: every user check must be an explicit raise."
    import ast
    from pathlib import Path
    for f in sorted((Path(__file__).parents[1] / 'fastfit').glob('*.py')):
        asserts = [n.lineno for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Assert)]
        assert not asserts, f"{f.name}: assert at lines {asserts}"


def test_valid_pair_with_other_features():
    raises(ValueError, lambda: RegDataLoaders.from_arrays(X10, Y10, valid=(np.zeros((3, 2)), np.zeros(3))),
           'x_valid has 2 features but x has 1')
    raises(TypeError, lambda: RegDataLoaders.from_arrays(X10, Y10, valid=np.zeros(3)), 'valid must be a pair (x_valid, y_valid)',
           'ndarray')


def test_huber_delta_and_history_size():
    from fastfit.all import ParamHistory, huber
    raises(ValueError, lambda: huber(delta=-1), 'delta must be a finite number > 0', 'got -1')
    raises(ValueError, lambda: ParamHistory(max_records=2), 'max_records must be >= 3', 'got 2')
