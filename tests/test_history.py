"ParamHistory: bounded, evenly thinned records (first and last kept), parameter subsets, exact values."
import pytest
import torch
from torch.func import functional_call

from fastfit.all import FuncModel, LinearModel, ParamHistory, RegDataLoaders, regression_learner, synth_linear


def fit(n, max_records=2000, bs=None, **kw):
    learn = regression_learner(synth_linear(n=60, seed=0).dataloaders(bs=bs, valid_pct=0), LinearModel(init={'w': [0.], 'b': 0.}),
                               history=False, cbs=ParamHistory(max_records=max_records, **kw), lr=.05)
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


def test_unbounded_run_records_every_step_and_exact_losses():
    learn = fit(30)
    h = learn.param_history
    assert len(h) == 31 and list(h.steps) == list(range(31)) and h.flat_names == ['w', 'b']
    x, y = learn.dls.train.x, learn.dls.train.y
    for i in (0, 7, 30):  # full batch: each record's loss is the loss at its parameters
        pred = functional_call(learn.model, h.record(i), (x,))
        assert float(h.losses[i]) == pytest.approx(float(((pred - y) ** 2).mean()), rel=1e-5)
    torch.testing.assert_close(h.params['w'][-1], learn.model.w.detach())


@pytest.mark.parametrize('n', [1, 2, 5, 6, 7, 12, 13, 50, 101, 257])
def test_bounded_keeps_first_and_last_evenly(n):
    full, small = fit(n).param_history, fit(n, max_records=7).param_history
    s = small.steps
    assert len(small) <= 7 and s[0] == 0 and s[-1] == n and (s[1:] > s[:-1]).all()
    gaps = s[1:-1] - s[:-2]
    assert len(set(gaps.tolist())) <= 1  # evenly spaced, except the gap to the last
    # every kept record is exactly the unthinned record of that step
    torch.testing.assert_close(small.flat, full.flat[torch.as_tensor(s)])
    torch.testing.assert_close(small.losses, full.losses[torch.as_tensor(s)])


def test_long_run_memory_is_bounded():
    learn = fit(3000, max_records=100)
    h = learn.param_history
    assert len(h) <= 100 and h.steps[-1] == 3000 and h._flat.shape == (100, 2)
    assert len(h) >= 50  # thinning halves at most: the history never gets sparse


def test_params_subset():
    h = fit(10, params=['b']).param_history
    assert h.flat_names == ['b'] and list(h.params) == ['b'] and h.flat.shape == (11, 1)
    with pytest.raises(ValueError, match=r"\['c'\] not among the model's parameters \['w', 'b'\]"): fit(2, params=['c'])
    with pytest.raises(ValueError, match='max_records must be >= 3'): ParamHistory(max_records=2)


def test_big_model_records_a_subset_and_says_so(capsys):
    x = torch.randn(50, 1)
    model = FuncModel(lambda x, p: x[:, 0] * p['a'] + p['big'].mean(), init={'a': 1., 'big': torch.zeros(20_000)})
    learn = regression_learner(RegDataLoaders.from_arrays(x, 2 * x, valid_pct=0), model)
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    out = capsys.readouterr().out
    assert "the model has 20,001 parameters; recording only ['a']" in out and 'params=' in out
    assert learn.param_history.flat_names == ['a']
    learn = regression_learner(RegDataLoaders.from_arrays(x, 2 * x, valid_pct=0), model, history=False,
                               cbs=ParamHistory(params=['big']))
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    assert learn.param_history.flat.shape == (3, 20_000)


def test_minibatch_records_every_step_across_fits():
    learn = fit(2, bs=20)
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    h = learn.param_history
    assert len(h) == 3 * 3 + 1 and h.steps[-1] == 9 and torch.isfinite(h.losses).all()


def test_device_path_records_the_same_history():
    "The torch.cat recording used for parameters off the CPU (CUDA) gives the CPU path's history (checked on the CPU)."
    from fastfit.all import ParamHistory, regression_learner, synth_linear

    class TorchPathHistory(ParamHistory):
        numpy_views = False  # as for CUDA parameters: no numpy views

    hs = []
    for h in (ParamHistory(max_records=8), TorchPathHistory(max_records=8)):
        learn = regression_learner(synth_linear(n=50).dataloaders(bs=16), history=False, cbs=[h])
        with learn.no_bar(), learn.no_logging(): learn.fit(7)
        hs.append(h)
    assert len(hs[0]) <= 8 and list(hs[0].steps) == list(hs[1].steps)
    torch.testing.assert_close(hs[0].flat, hs[1].flat)
    torch.testing.assert_close(hs[0].losses, hs[1].losses)
