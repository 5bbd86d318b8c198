"One convention per idea: the data first and named `dls`, bs=64 (None: full batch), dpi 100, seed 42, a learner class per task."
import inspect
import pydoc

import pytest
import torch

import fastfit.all as A
from fastfit.all import (
    AnimateFit,
    ClsDataLoaders,
    ClsLearner,
    FitLearner,
    LinearModel,
    MLPModel,
    PolyModel,
    RegDataLoaders,
    RegLearner,
    Runs,
    SoftmaxModel,
    SynthData,
    classification_learner,
    regression_learner,
    synth_blobs,
    synth_linear,
)
from fastfit.all import Learner as FastaiLearner

COMPARISONS = ['compare_optimizers', 'lr_sweep', 'compare_batch_sizes', 'compare_scaling', 'fit_by_hand', 'save_fit_by_hand']


def params(f) -> list: return list(inspect.signature(f).parameters)
def default(f, name): return inspect.signature(f).parameters[name].default


def test_the_comparison_helpers_take_the_data_first_as_dls():
    found = [n for n in COMPARISONS if hasattr(A, n)]
    assert {'compare_optimizers', 'lr_sweep', 'compare_batch_sizes', 'compare_scaling'} <= set(found)
    # save_fit_by_hand(fname, dls, ...) names the file first, as save_animation and savefig do: the data comes next
    firsts = {n: params(getattr(A, n))[n.startswith('save_')] for n in found}
    assert set(firsts.values()) == {'dls'}, firsts


def test_the_comparison_helpers_order_their_parameters_alike():
    "After the data: what is compared, then model, epochs, lr (or lr_share), loss_func, opt_func, in that order where present."
    order = ['model', 'epochs', 'lr', 'lr_share', 'loss_func', 'opt_func']
    compared = dict(compare_optimizers='opts', lr_sweep='lrs', compare_batch_sizes='bss', compare_scaling=None)
    for name, what in compared.items():
        ps = params(getattr(A, name))
        assert ps[1] == (what or 'model'), (name, ps)
        common = [p for p in ps if p in order]
        assert common == sorted(common, key=order.index), (name, ps)


@pytest.mark.parametrize('f', [SynthData.dataloaders, RegDataLoaders.from_arrays, ClsDataLoaders.from_arrays],
                         ids=['SynthData.dataloaders', 'RegDataLoaders.from_arrays', 'ClsDataLoaders.from_arrays'])
def test_batch_size_defaults_to_fastais_64(f):
    assert default(f, 'bs') == 64 and default(f, 'seed') == 42


def test_both_from_arrays_take_one_order():
    assert params(RegDataLoaders.from_arrays) == params(ClsDataLoaders.from_arrays)


def test_full_batch_is_bs_none():
    s = synth_linear(n=100)
    assert s.dataloaders(bs=None).train.full_batch and not s.dataloaders().train.full_batch
    assert len(s.dataloaders().train) == 1 and len(s.dataloaders(bs=16).train) == 5  # 80 training samples, drop_last


def test_one_default_dpi():
    fs = dict(animate=FastaiLearner.animate, save_animation=FastaiLearner.save_animation, storyboard=FastaiLearner.storyboard,
              AnimateFit=AnimateFit, runs_animate=Runs.animate, runs_save_animation=Runs.save_animation, runs_show=Runs.show)
    dpis = {k: default(f, 'dpi') for k, f in fs.items()}
    assert set(dpis.values()) == {100}, dpis


def test_every_seed_defaults_to_42():
    seeds = {}
    for name, obj in vars(A).items():
        if not getattr(obj, '__module__', '').startswith('fastfit') or not callable(obj): continue
        try: sig = inspect.signature(obj)
        except (TypeError, ValueError): continue
        if 'seed' in sig.parameters: seeds[name] = sig.parameters['seed'].default
    assert {'synth_linear', 'synth_poly', 'synth_rollercoaster', 'LinearModel', 'MLPModel'} <= set(seeds)
    assert {k: v for k, v in seeds.items() if v != 42} == {}


def test_the_data_may_be_a_synthdata_or_dataloaders():
    s = synth_linear(n=30, seed=0)
    a = A.lr_sweep(s, (.1,), epochs=2)
    b = A.lr_sweep(s.dataloaders(valid_pct=0), (.1,), epochs=2)
    torch.testing.assert_close(a.learners[.1].param_history.flat, b.learners[.1].param_history.flat)
    assert len(A.compare_optimizers(s, [A.SGD], epochs=1)) == 1
    with pytest.raises(TypeError, match=r'dls must be DataLoaders from fastfit .* got list'): A.compare_optimizers([1], [A.SGD])


def test_a_learners_class_says_what_it_fits():
    reg = regression_learner(synth_linear(n=20).dataloaders(bs=None))
    cls = classification_learner(synth_blobs(n=20).dataloaders(bs=None))
    assert type(reg) is RegLearner and type(cls) is ClsLearner
    assert isinstance(reg, FitLearner) and isinstance(cls, FitLearner) and isinstance(cls, FastaiLearner)
    assert inspect.signature(classification_learner).return_annotation in (ClsLearner, 'ClsLearner')


def test_help_shows_the_parameter_comments():
    text = pydoc.render_doc(regression_learner, renderer=pydoc.plaintext)
    assert 'Args:' in text and "lr: learning rate" in text and 'history: attach a `ParamHistory` callback' in text
    assert 'n_in: number of input features' in pydoc.render_doc(LinearModel, renderer=pydoc.plaintext)
    assert 'dpi: resolution' in FastaiLearner.save_animation.__doc__  # a method fastfit patches onto fastai's Learner
    assert 'bs: batch size' in SynthData.dataloaders.__doc__


def test_models_show_their_parameters():
    assert repr(LinearModel(init=dict(w=2.79834, b=1.99991))) == 'LinearModel(w=2.7983, b=1.9999)'
    assert repr(LinearModel(n_in=2, bias=False, init=[.5, .75])) == 'LinearModel(w=[0.5, 0.75])'
    assert repr(PolyModel(2, init=[.75, -14.25, 68.6875])) == 'PolyModel(c2=0.75, c1=-14.25, c0=68.688)'
    assert repr(SoftmaxModel(1, 2, init=[1, 2, 3, 4])) == 'SoftmaxModel(w=[[1], [2]], b=[3, 4])'
    assert repr(LinearModel(n_in=20)) == 'LinearModel(n_in=20, bias=True): 21 parameters'  # more than a glance holds
    assert repr(MLPModel(hidden=(4,))) == 'MLPModel(n_in=1, hidden=(4,), n_out=1): 13 parameters'
