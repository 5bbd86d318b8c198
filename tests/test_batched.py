"Runs fitted together (`fastfit.batched.fit_together`) end as separate fits end: parameters, histories, divergence."
import copy
from functools import partial

import numpy as np
import pytest
import torch
from fastai.optimizer import SGD, Adam

from fastfit.all import (
    LinearModel,
    LogisticModel,
    MLPModel,
    PolyModel,
    SoftmaxModel,
    classification_learner,
    regression_learner,
    synth_blobs,
    synth_func,
    synth_linear,
)
from fastfit.batched import batchable, fit_together


def _learners(dls, model0, runs, cls=False):
    "Fresh learners of `model0` (copies), one per (lr, opt_func), each on its own copy of the loaders (same batch order)."
    make = classification_learner if cls else regression_learner
    out = []
    for lr, opt in runs:
        d = copy.copy(dls)
        d.loaders = [dl.new() for dl in dls.loaders]
        out.append(make(d, model=copy.deepcopy(model0), lr=lr, opt_func=opt))
    return out


def _separately(learners, epochs):
    for lrn in learners:
        lrn.report_divergence = False
        with lrn.no_bar(), lrn.no_logging(): lrn.fit(epochs)
    return learners


def _same(a, b, rtol=1e-4):
    "Two learners fitted alike: the same steps recorded, parameters, losses and step data to float tolerance."
    ha, hb = a.param_history, b.param_history
    assert (a.diverged, ha.step, len(ha), ha.stride) == (b.diverged, hb.step, len(hb), hb.stride)
    np.testing.assert_array_equal(ha.steps, hb.steps)
    scale = ha.flat.abs().max().item() + 1
    np.testing.assert_allclose(hb.flat.numpy(), ha.flat.numpy(), rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(hb.losses.numpy(), ha.losses.numpy(), rtol=rtol, atol=1e-6)
    sa, sb = ha.step_data, hb.step_data
    assert sa.keys() == sb.keys()
    for k in sa:
        va, vb = np.asarray(sa[k], dtype=np.float64), np.asarray(sb[k], dtype=np.float64)
        np.testing.assert_array_equal(np.isnan(va), np.isnan(vb), err_msg=k)
        ok = ~np.isnan(va)
        np.testing.assert_allclose(vb[ok], va[ok], rtol=rtol, atol=rtol * (np.abs(va[ok]).max(initial=0) + 1), err_msg=k)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize('bs', [None, 16])
def test_an_lr_sweep_fitted_together_equals_separate_fits(bs):
    "Plain SGD at five lrs, two of them diverging: the same records, the same step of divergence, the same final state."
    dls = synth_linear(seed=0).dataloaders(bs=bs, valid_pct=0)
    runs = [(lr, SGD) for lr in (.01, .1, .5, 1.2, 3.)]
    sep = _separately(_learners(dls, LinearModel(), runs), 60)
    tog = _learners(dls, LinearModel(), runs)
    assert fit_together(tog, 60)
    assert sep[-1].diverged is not None  # lr=3 blows up, as a fit of its own does
    for a, b in zip(sep, tog): _same(a, b)


def test_optimizers_with_state_fitted_together_equal_separate_fits():
    "SGD, momentum and Adam in one batch: each steps with its own fastai optimizer; running averages recorded as alone."
    dls = synth_linear(seed=0).dataloaders(bs=16, valid_pct=0)
    runs = [(.1, SGD), (.1, partial(SGD, mom=.9)), (.05, Adam)]
    sep = _separately(_learners(dls, LinearModel(), runs), 20)
    tog = _learners(dls, LinearModel(), runs)
    assert fit_together(tog, 20)
    for a, b in zip(sep, tog): _same(a, b)
    assert tog[2].param_history.step_data['sqr_avg'].abs().sum() > 0


def test_runs_of_one_stateful_optimizer_fitted_together_equal_separate_fits():
    "Two Adam runs and two momentum runs: each history after the first set up from the first's, its own running averages."
    dls = synth_linear(seed=0).dataloaders(bs=16, valid_pct=0)
    for runs in ([(.1, Adam), (.02, Adam)], [(.1, partial(SGD, mom=.9))] * 2):
        sep = _separately(_learners(dls, LinearModel(), runs), 12)
        tog = _learners(dls, LinearModel(), runs)
        assert fit_together(tog, 12)
        for a, b in zip(sep, tog): _same(a, b)
        assert tog[1].param_history._g['grad_avg'] is not tog[0].param_history._g['grad_avg']


@pytest.mark.parametrize('case', ['logistic', 'logistic bs 16', 'softmax', 'mlp', 'poly', 'thinned'])
def test_other_models_fitted_together_equal_separate_fits(case):
    "Classifiers (logistic: its gradient in closed form; softmax through autograd), an MLP, a polynomial, a thinned history."
    steps, cls = 60, False
    if case == 'logistic': dls, model, cls = synth_blobs(seed=0).dataloaders(bs=None, valid_pct=0), LogisticModel(2), True
    elif case == 'logistic bs 16': dls, model, cls = synth_blobs(seed=0).dataloaders(bs=16, valid_pct=0), LogisticModel(2), True
    elif case == 'softmax':
        dls, model, cls = synth_blobs(centers=3, seed=0).dataloaders(bs=32, valid_pct=0), SoftmaxModel(2, 3), True
    elif case == 'mlp': dls, model = synth_func(torch.sin, seed=0).dataloaders(bs=None, valid_pct=0), MLPModel(hidden=(8,))
    elif case == 'poly': dls, model = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0), PolyModel(2)
    else: dls, model, steps = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0), LinearModel(), 2500
    runs = [(lr, SGD) for lr in ((.01, .1, 3., 30.) if case.startswith('logistic') else (.01, .1))]
    sep = _separately(_learners(dls, model, runs, cls), steps)
    tog = _learners(dls, model, runs, cls)
    assert fit_together(tog, steps)
    for a, b in zip(sep, tog): _same(a, b)
    if case == 'thinned': assert tog[0].param_history.stride > 1


def test_fitted_together_learners_fit_on_alone():
    "After a batched fit each learner owns its parameters: fitting one further leaves the others as they were."
    dls = synth_linear(seed=0).dataloaders(bs=None, valid_pct=0)
    a, b = _learners(dls, LinearModel(), [(.1, SGD), (.2, SGD)])
    assert fit_together([a, b], 10)
    before = [p.detach().clone() for p in b.model.parameters()]
    with a.no_bar(), a.no_logging(): a.fit(5)
    assert a.param_history.step == 15
    for p, q in zip(b.model.parameters(), before): assert torch.equal(p.detach(), q)


def test_what_cannot_be_batched_is_left_alone():
    "Different data, or a single run: fit_together says False and fits nothing."
    s = synth_linear(seed=0)
    a = _learners(s.dataloaders(bs=None, valid_pct=0), LinearModel(), [(.1, SGD)])[0]
    b = _learners(s.dataloaders(bs=16, valid_pct=0), LinearModel(), [(.1, SGD)])[0]
    assert not batchable([a]) and not batchable([a, b])
    assert not fit_together([a, b], 5)
    assert a.param_history.step == 0 and b.param_history.step == 0


@pytest.mark.parametrize('hidden,n_in,n_out', [((16,), 1, 1), ((8, 5), 3, 2), ((4,), 2, 3)])
def test_the_batched_forward_of_an_mlp_is_each_parameter_sets_own(hidden, n_in, n_out):
    "MLPModel.forward_many (the runs fitted together, the landscape grid) gives each set's forward, with or without gradients."
    m = MLPModel(n_in=n_in, hidden=hidden, n_out=n_out)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, n_in, generator=g)
    ps = {k: torch.randn(7, *p.shape, generator=g) for k, p in m.named_parameters()}
    each = torch.stack([torch.func.functional_call(m, {k: v[i] for k, v in ps.items()}, (x,)) for i in range(7)])
    for grad in (True, False):
        with torch.set_grad_enabled(grad): out = m.forward_many(x, ps)
        torch.testing.assert_close(out, each, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cls', [False, True])
def test_a_fresh_copy_of_a_learner_fits_as_one_built_anew(cls):
    "fresh_copy (a sweep's runs after the first): the attributes, callbacks and optimizer of a learner built anew, each its own."
    from fastfit.fastai_private import fresh_copy, opt_like
    from fastfit.models import copy_model
    dls = (synth_blobs(seed=0) if cls else synth_linear(seed=0)).dataloaders(bs=16, valid_pct=0)
    make = classification_learner if cls else regression_learner
    first = make(dls, lr=.1)
    def own(dls):  # each learner its own loaders, shuffled from the same seed (as a sweep gives each run)
        d = copy.copy(dls)
        d.loaders = [dl.new() for dl in dls.loaders]
        return d
    built = make(own(dls), model=copy.deepcopy(first.model), lr=.05)
    made = fresh_copy(first, dls=own(dls), model=copy_model(first.model), lr=.05)
    assert vars(made).keys() == vars(built).keys()
    assert [type(c) for c in made.cbs] == [type(c) for c in built.cbs]
    for c, c0 in zip(made.cbs, first.cbs):
        assert c is not c0 and c.learn is made and getattr(made, c.name) is c
    assert made.recorder.loss is not first.recorder.loss and made.param_history._configs is not first.param_history._configs
    first.create_opt(); first.opt.set_hypers(lr=first.lr)
    assert opt_like(made, first)
    built.create_opt(); built.opt.set_hypers(lr=built.lr)
    assert made.opt.hypers == built.opt.hypers and made.opt.cbs == built.opt.cbs
    assert [[id(p) for p in pg] for pg in made.opt.param_lists] == [[id(p) for p in made.model.parameters()]]
    assert {k: v for k, v in made.opt.state.items() if not isinstance(k, torch.Tensor)} == \
        {k: v for k, v in built.opt.state.items() if not isinstance(k, torch.Tensor)}
    for lrn in (made, built):
        with lrn.no_bar(), lrn.no_logging(): lrn.fit(3)
    _same(built, made, rtol=0)
    assert first.param_history.step == 0 and len(first.param_history) == 0  # the learner copied is untouched


@pytest.mark.parametrize('bs', [None, 16])
def test_an_lr_sweep_makes_each_runs_learner_when_asked_and_it_equals_a_separate_fit(bs):
    """lr_sweep fits its runs without a learner each (`StackedRuns`): asked for, a run's learner holds what a fit of its
    own leaves (records, parameters, divergence), its map's fates and final losses are the runs' own, and it fits on."""
    from fastfit.all import lr_sweep
    from fastfit.batched import StackedRuns
    from fastfit.panels.sweep import fate, optimum_loss
    dls = synth_linear(seed=0).dataloaders(bs=bs, valid_pct=0)
    lrs = (.01, .1, .5, 1.2, 3.)
    sweep = lr_sweep(dls, lrs=lrs, epochs=60)
    assert isinstance(sweep.learners, StackedRuns) and len(sweep.learners._made) <= 1  # run 0's, for the optimum
    sep = _separately(_learners(dls, LinearModel(), [(lr, SGD) for lr in lrs]), 60)
    assert {lr: s[0] for lr, s in sweep.stops.items()} == {lr: a.diverged for lr, a in zip(lrs, sep) if a.diverged is not None}
    assert sweep.stops  # lr=3 diverges
    opt = optimum_loss(sep[0])
    assert list(sweep.fates.values()) == [fate(a, sweep.stops.get(lr), opt) for lr, a in zip(lrs, sep)]
    losses = sweep.final_losses()
    assert list(losses) == list(lrs)  # in the runs' order, the diverged ones' from their learners
    for lr, a in zip(lrs, sep):
        b = sweep.learners[lr]
        assert b is sweep.learners[lr] and b.lr == lr
        _same(a, b)
        np.testing.assert_allclose(losses[lr], float(a.param_history.losses[-1]), rtol=1e-4)
    for a, b in zip(sep[:2], [sweep.learners[lr] for lr in lrs[:2]]):  # each learner its own, shuffling on as a fit of its own
        for lrn in (a, b):
            with lrn.no_bar(), lrn.no_logging(): lrn.fit(3)
        _same(a, b)
    assert sweep.learners[lrs[2]].param_history.step == 60 * len(dls.train)  # the others untouched


@pytest.mark.parametrize('hidden,n_in,n_out,act', [((16,), 1, 1, 'relu'), ((8, 5), 3, 2, 'relu'), ((4,), 2, 3, 'relu'),
                                                   ((16,), 1, 1, 'tanh'), ((6, 5), 2, 1, 'sigmoid')])
def test_the_hand_backward_of_an_mlp_is_autograds(hidden, n_in, n_out, act):
    "MLPGrad (runs of an MLP fitted together): every run's MSE and gradient as autograd gives them through forward_many."
    import torch.nn.functional as F

    from fastfit.batched import MLPGrad, losses_many
    m = MLPModel(n_in=n_in, hidden=hidden, n_out=n_out, act=act)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, n_in, generator=g), torch.randn(50, n_out, generator=g)
    ps = {k: torch.randn(7, *p.shape, generator=g).requires_grad_() for k, p in m.named_parameters()}
    assert MLPGrad.fits(m, F.mse_loss, x) and not MLPGrad.fits(MLPModel(act='gelu'), F.mse_loss, x)
    L = losses_many(F.mse_loss, m.forward_many(x, ps), y)
    L.sum().backward()
    loss, grads = MLPGrad(m)(x, y, {k: p.detach().clone() for k, p in ps.items()})
    torch.testing.assert_close(loss, L.detach(), rtol=1e-5, atol=1e-6)
    assert grads.keys() == ps.keys()
    for k, p in ps.items(): torch.testing.assert_close(grads[k], p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('hidden,act', [((8, 4), 'relu'), ((16,), 'relu'), ((8,), 'tanh')])
def test_an_mlp_sweep_with_diverging_runs_equals_separate_fits(hidden, act):
    "An MLP's runs fitted together (gradients by hand), a few lrs blowing up: each run as its own fit leaves it."
    from fastfit.all import lr_sweep
    dls = synth_func(torch.sin, seed=0).dataloaders(bs=None, valid_pct=0)
    lrs = (.03, .3, 3., 30.)
    sweep = lr_sweep(dls, lrs=lrs, epochs=40, model=MLPModel(hidden=hidden, act=act))
    sep = _separately(_learners(dls, MLPModel(hidden=hidden, act=act), [(lr, SGD) for lr in lrs]), 40)
    assert any(a.diverged is not None for a in sep)
    for lr, a in zip(lrs, sep): _same(a, sweep.learners[lr])
