"fastfit's overrides of fastai internals: every private name they rely on exists, with the parameters they assume."
import importlib
import importlib.util
import inspect
import re
import tomllib
import warnings
from importlib.metadata import version
from pathlib import Path

import pytest

from fastfit import fastai_private

ROOT = Path(__file__).parents[1]
CHECKED = fastai_private.CHECKED


def _v(s): return tuple(int(p) for p in re.findall(r'\d+', s)[:3])


def _lookup(module, name):
    "The object at `module.name`, reading an attribute set in `__init__` through an instance; None if missing."
    obj = importlib.import_module(module)
    parts = name.split('.')
    for i, part in enumerate(parts):
        if hasattr(obj, part): obj = getattr(obj, part); continue
        if i == len(parts) - 1 and inspect.isclass(obj):
            try: inst = obj()
            except TypeError: return None
            return getattr(inst, part, None)
        return None
    return obj


@pytest.mark.parametrize('module, name, params', fastai_private.RELIES_ON, ids=[f'{m}:{n}' for m, n, _ in fastai_private.RELIES_ON])
def test_every_private_name_fastfit_relies_on_exists(module, name, params):
    if module == 'fastai.distributed' and importlib.util.find_spec('accelerate') is None:
        pytest.skip("fastai.distributed needs accelerate: the fastfit-gd[distributed] extra is not installed")
    lo, hi = CHECKED['fastai']
    where = (f"fastfit/fastai_private.py overrides or reads fastai's private `{module}.{name}`; it was checked against "
             f"fastai {lo} to {hi}, and this is fastai {version('fastai')} (fastcore {version('fastcore')})")
    obj = _lookup(module, name)
    if obj is None: pytest.fail(f"{where}, which no longer has it: re-read fastai's code and update fastai_private.py")
    if params is not None:
        got = list(inspect.signature(obj).parameters)
        if got != params:
            pytest.fail(f"{where}, whose parameters are now {got}, not {params}: re-read fastai's code and update the override")


def test_the_overrides_are_the_ones_listed():
    "Every fastai method LeanLoop overrides is in RELIES_ON (so the check above covers it)."
    from fastai.learner import Learner
    listed = {n.split('.', 1)[1] for m, n, _ in fastai_private.RELIES_ON if n.startswith('Learner.')}
    overridden = {k for k, v in vars(fastai_private.LeanLoop).items()
                  if callable(v) and hasattr(Learner, k) and k.startswith('_') and not k.startswith('__')}
    assert overridden <= listed, f"LeanLoop overrides {sorted(overridden - listed)} without listing them in RELIES_ON"


def test_checked_range_starts_at_the_declared_lower_bounds():
    "The oldest fastai/fastcore the overrides were checked with are the lower bounds pyproject.toml declares."
    deps = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['dependencies']
    for pkg, (lo, hi) in CHECKED.items():
        decl = [d for d in deps if re.match(rf'{pkg}\b', d)]
        assert decl == [f'{pkg}>={lo}'], (pkg, decl, lo)
        assert _v(lo) <= _v(hi)
        if _v(version(pkg)) > _v(hi):  # newer than checked: the names above still decide; say so in the log
            warnings.warn(f"{pkg} {version(pkg)} is newer than the {hi} fastfit's private overrides were checked against")


def test_float32_rounding_and_epoch_times_match_numpy_and_fastprogress():
    "The recorder's float32 rounding (struct) and its cached epoch times give what numpy and fastprogress give."
    import numpy as np
    from fastprogress.fastprogress import format_time
    rng = np.random.default_rng(0)
    vals = [0., -0., 1 / 3, 1e-45, 1e-40, 3.4e38, 3.5e38, -1e300, float('inf'), *rng.normal(size=200) * 10. ** rng.integers(-40, 40, 200)]
    for v in vals: assert fastai_private._as_float32(float(v)) == float(np.float32(v)), v
    assert np.isnan(fastai_private._as_float32(float('nan')))
    for t in [0, 1, 59, 60, 3599, 3600, 86399, 100000]: assert fastai_private._format_time(t) == format_time(t + .7)


def test_model_hooks_and_step_events_still_run_where_the_fast_paths_skip_calls():
    """The model is called through nn.Module's call when a hook could run (its own or a global one), and a callback on
    the step's events (skipped when nobody handles them) sees every step; the numbers are the same either way."""
    import torch
    from fastai.callback.core import Callback
    from torch.nn.modules.module import register_module_forward_hook

    from fastfit.all import regression_learner, synth_linear

    dls = synth_linear(n=100, seed=0).dataloaders(bs=None, valid_pct=.2)  # (full batch: no shuffling between fits)
    def fit(*, hook=False, global_hook=False, cbs=()):
        learn = regression_learner(dls, history=False, cbs=list(cbs))
        calls = []
        h = learn.model.register_forward_hook(lambda m, i, o: calls.append('own')) if hook else None
        g = register_module_forward_hook(lambda m, i, o: calls.append('global')) if global_hook else None
        try:
            with learn.no_bar(), learn.no_logging(): learn.fit(3)
            assert fastai_private._calls_forward(learn.model) == (h is None and g is None)
        finally:
            for x in (h, g):
                if x is not None: x.remove()
        return learn, calls

    plain, none = fit()
    assert none == []
    hooked, own = fit(hook=True)
    assert own == ['own'] * 6  # a training and a validation forward an epoch
    _, glob = fit(global_hook=True)
    assert glob.count('global') == 6
    for a, b in zip(plain.model.parameters(), hooked.model.parameters()): assert torch.equal(a, b)
    assert plain.recorder.values == hooked.recorder.values

    class Steps(Callback):
        def __init__(self): self.seen = []
        def before_backward(self): self.seen.append('bb')
        def after_step(self): self.seen.append('as')
        def after_loss(self): self.seen.append('al')
    cb = Steps()
    counted, _ = fit(cbs=[cb])
    assert cb.seen == ['al', 'bb', 'as', 'al'] * 3  # the validation's loss too
    for a, b in zip(plain.model.parameters(), counted.model.parameters()): assert torch.equal(a, b)


def test_a_learner_with_its_own_with_events_sees_every_epoch_through_it():
    """FitLearner fires each epoch's events itself (no `_with_events` call an epoch); a subclass overriding `_with_events`
    gets fastai's epoch loop back, each epoch through its override, and the same fit."""
    import torch
    from fastai.callback.core import Callback, CancelEpochException
    from fastcore.basics import noop

    from fastfit.all import RegLearner, regression_learner, synth_linear

    seen = []
    class Traced(RegLearner):
        def _with_events(self, f, event_type, ex, final=noop):
            seen.append(event_type)
            return super()._with_events(f, event_type, ex, final)

    class SkipSecond(Callback):  # an epoch cancelled: its after_cancel_epoch and after_epoch still run
        def __init__(self): self.events = []
        def before_epoch(self):
            if self.epoch == 1: raise CancelEpochException()
        def after_cancel_epoch(self): self.events.append(('cancel', self.epoch))
        def after_epoch(self): self.events.append(('after', self.epoch))

    dls = synth_linear(n=100, seed=0).dataloaders(bs=None, valid_pct=.2)
    fits = []
    for traced in (False, True):
        learn = regression_learner(dls, history=False)
        if traced: learn.__class__ = Traced
        cb = SkipSecond()
        with learn.no_bar(), learn.no_logging(): learn.fit(4, cbs=cb)
        fits.append((learn, cb.events))
    assert seen.count('epoch') == 4 and seen.count('fit') == 1
    (plain, ev), (traced, ev2) = fits
    assert ev == ev2 == [('after', 0), ('cancel', 1), ('after', 1), ('after', 2), ('after', 3)]
    assert plain.recorder.values == traced.recorder.values
    for a, b in zip(plain.model.parameters(), traced.model.parameters()): assert torch.equal(a, b)


def test_cast_to_tensor_skipped_only_where_it_has_nothing_to_cast():
    """A batch of plain tensors skips CastToTensor's handler; a batch of fastai's TensorBase, or one a callback that runs
    before the cast turned into TensorBase, is cast as fastai casts it: later callbacks see plain tensors either way."""
    import torch
    from fastai.callback.core import Callback
    from fastai.torch_core import TensorBase

    from fastfit.all import RegDataLoaders, regression_learner

    class Wrap(Callback):
        order = 0
        def before_batch(self): self.learn.xb = (TensorBase(self.learn.xb[0]),)

    class Seen(Callback):
        order = 20
        def __init__(self): self.types = set()
        def before_batch(self): self.types |= {type(t) for t in self.learn.xb + self.learn.yb}

    x = torch.linspace(-1, 1, 40)[:, None]
    fits = {}
    for name, xs, cbs in [('plain', x, []), ('tensorbase data', TensorBase(x), []), ('made tensorbase', x, [Wrap()])]:
        for bs in (None, 8):
            seen = Seen()
            learn = regression_learner(RegDataLoaders.from_arrays(xs, 3 * x + 1, valid_pct=.25, bs=bs), history=False, cbs=cbs + [seen])
            with learn.no_bar(), learn.no_logging(): learn.fit(2)
            assert seen.types == {torch.Tensor}, (name, bs, seen.types)
            fits[name, bs] = learn
    assert type(fits['tensorbase data', None].dls.train.x) is TensorBase  # (fastfit's loaders keep the subclass)
    for bs in (None, 8):
        a, b = fits['plain', bs], fits['tensorbase data', bs]
        assert a.recorder.values == b.recorder.values
        for p, q in zip(a.model.parameters(), b.model.parameters()): assert torch.equal(p, q)
