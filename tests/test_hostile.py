"Hostile use at the edges of the new features (issue 21): one test per category, each a wrong or unclear result before."
import threading

import torch

from fastfit.all import (
    classification_learner,
    regression_learner,
    synth_blobs,
    synth_linear,
)


def quiet(learn, n, **kw):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, **kw)
    return learn


def _state(learn) -> dict: return {k: v.clone() for k, v in learn.model.state_dict().items()}


def test_rendering_never_changes_the_learner(tmp_path):
    "Two exports of one learner at once (threads) give the bytes of one alone; the learner's weights and loss stay put."
    reg = quiet(regression_learner(synth_linear(n=60, seed=0).dataloaders(bs=None)), 12)
    cls = quiet(classification_learner(synth_blobs(n=60, seed=0).dataloaders(bs=None)), 8)
    for learn, panels in ((reg, ('fit', 'surface', 'loss')), (cls, ('boundary', 'loss'))):
        before, loss = _state(learn), learn.train_loss()
        learn.save_animation(tmp_path / 'alone.gif', frames=6, panels=panels, dpi=50)
        alone = (tmp_path / 'alone.gif').read_bytes()
        errors = []
        def export(i, learn=learn, panels=panels):
            try: learn.save_animation(tmp_path / f'{i}.gif', frames=6, panels=panels, dpi=50)
            except Exception as e: errors.append(e)
        threads = [threading.Thread(target=export, args=(i,)) for i in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert not errors
        assert all((tmp_path / f'{i}.gif').read_bytes() == alone for i in range(3))
        after = _state(learn)
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert learn.train_loss() == loss
        # train_loss at other parameters, the current state's Records: neither moves the model nor follows it later
        learn.train_loss({k: torch.zeros_like(v) for k, v in before.items()})
        assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    from fastfit.models import private_model
    m = reg.model
    copy = private_model(m)
    assert all(a.data_ptr() != b.data_ptr() and not b.requires_grad for a, b in zip(m.parameters(), copy.parameters()))
    from fastfit.records import Records
    recs = Records.current(reg)
    w = recs.params[0]['w'].clone()
    quiet(reg, 3)
    assert torch.equal(recs.params[0]['w'], w)


def _checked_arithmetic(frames) -> int:
    "Recompute every line 'name = <numbers> = result' of the step panel's frames; return how many were checked."
    import re
    n = 0
    for lines in frames:
        assert not any('nan' in ln for ln in lines), lines
        for ln in lines:
            parts = [p.strip() for p in ln.split(' = ')]
            if len(parts) < 3 or re.search(r'[a-df-z]', parts[-2].replace('×', '')): continue  # not numbers: a formula
            expr, result = parts[-2].replace('×', '*'), float(parts[-1].split()[0].strip('()'))
            terms = [abs(float(t)) for t in re.findall(r'\d[\d.]*(?:e[-+]?\d+)?', expr)]
            assert abs(eval(expr) - result) <= 2e-4 * max(terms + [abs(result)]) + 1e-9, ln
            n += 1
    return n


def test_step_panel_shows_each_steps_rule():
    "An optimizer changed mid-history, parameter groups with their own lr, a frozen parameter: every line adds up."
    from fastai.optimizer import SGD, Adam

    from fastfit.panels import StepPanel
    from fastfit.records import Records
    dls = synth_linear(n=50, seed=0).dataloaders(bs=None)
    def texts(learn): return StepPanel(learn, Records.from_history(learn.param_history, 100)).blocks[0]
    # SGD for 3 steps, then Adam (a new optimizer, its state starting at 0) for 2
    learn = quiet(regression_learner(dls), 3)
    learn.opt_func, learn.opt = Adam, None
    frames = texts(quiet(learn, 2))
    assert [f[0].split(' · ')[1].split(',')[0] for f in frames[1:]] == ['plain SGD'] * 3 + ['Adam'] * 2
    assert _checked_arithmetic(frames) == 3 * 2 + 2 * 6
    # parameter groups: w at lr .01, b at lr .1 (fastai's slice over a splitter's groups); SGD with momentum too
    for opt_func in (SGD, partial_momentum()):
        learn = regression_learner(dls, splitter=lambda m: [[m.w], [m.b]], opt_func=opt_func)
        frames = texts(quiet(learn, 2, lr=slice(.01, .1)))
        assert 'per parameter group' in frames[1][0]
        w_row = next(ln for ln in frames[1] if ln.lstrip().startswith('w ='))
        assert '0.01×' in w_row
        assert _checked_arithmetic(frames) >= 4
    # a frozen parameter: no gradient, shown unchanged (SGD and Adam)
    for opt_func in (SGD, Adam):
        learn = regression_learner(dls, opt_func=opt_func)
        learn.model.b.requires_grad_(False)
        frames = texts(quiet(learn, 2))
        assert any('no gradient: not updated' in ln for ln in frames[1])
        assert _checked_arithmetic(frames) >= 4


def partial_momentum():
    from functools import partial

    from fastai.optimizer import SGD
    return partial(SGD, mom=.9)
