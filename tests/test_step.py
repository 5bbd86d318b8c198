"The 'step' panel and the gradients in the history: seed 003's numbers, every optimizer's update, bounds, blit speed."
import re
import warnings
from functools import partial

import numpy as np
import pytest
import torch

from fastfit import glyphs
from fastfit.all import SGD, Adam, LinearModel, ParamHistory, PolyModel, RegDataLoaders, RMSProp, regression_learner, synth_linear
from fastfit.glyphs import GlyphText
from fastfit.panels import StepPanel, step_kind, step_update
from fastfit.plots import learner_frames
from fastfit.records import Records
from fastfit.render import Renderer

SEED3_GRADS = dict(b=-3.044811379650508, w=-1.8337537171510832)  # seed 003's printed gradients and step (lr 0.1)
SEED3_AFTER = dict(b=0.80119529, w=0.04511107)


def seed3_dls():
    "Seed 003's data: true_b 1, true_w 2, N 100, x ~ U(0,1) with numpy seed 42, shuffled 80/20."
    np.random.seed(42)
    x = np.random.rand(100, 1)
    y = 1 + 2 * x + .1 * np.random.randn(100, 1)
    idx = np.arange(100)
    np.random.shuffle(idx)
    return RegDataLoaders.from_arrays(x[idx[:80]], y[idx[:80]], valid=(x[idx[80:]], y[idx[80:]]), bs=None)


def has(text, *parts) -> bool:
    "Whether `parts` follow each other in `text`, with any spaces between (the panel pads its columns)."
    return re.search(r'\s*'.join(re.escape(p) for p in parts), text) is not None


def fitted(n=1, dls=None, **kw):
    learn = regression_learner(dls or seed3_dls(), LinearModel(init=dict(w=[-0.1382643], b=0.49671415)), **kw)
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


def test_seed003_gradients_and_step_are_recorded_by_default():
    h = fitted().param_history
    assert h.has_grads and list(h.steps) == [0, 1]
    g = h.grads
    assert torch.isnan(g['w'][0]).all() and torch.isnan(g['b'][0])  # record 0 is the start: no step, no gradient
    assert float(g['b'][1]) == pytest.approx(SEED3_GRADS['b'], rel=1e-5)
    assert float(g['w'][1, 0]) == pytest.approx(SEED3_GRADS['w'], rel=1e-5)
    d = h.step_data
    assert d['lr'][1] == pytest.approx(.1) and d['loss_before'][1] == pytest.approx(2.7421577700550976, rel=1e-6)
    torch.testing.assert_close(d['before'][1], h.flat[0])


def test_seed003_step_panel_shows_the_printed_numbers():
    "Step 1: gradients -3.0448 and -1.8338, new b and w as seed 003 prints them (to the 7 decimals float32 holds)."
    learn = fitted(5)
    panel = StepPanel(learn, Records.from_history(learn.param_history, 100))
    text = '\n'.join(panel.blocks[0][1])
    assert text.startswith('step 1 of 5 · plain SGD, lr 0.1') and 'p ← p - lr·∂L/∂p' in text
    assert re.search(r'b = +0\.4967141 - +0\.1×\(-3\.0448\) = +0\.8011953', text)
    assert re.search(r'w = +-0\.1382643 - +0\.1×\(-1\.8338\) = +0\.0451111', text)
    for k in 'bw': assert f"{SEED3_AFTER[k]:.7f}" in text  # 0.80119529 -> 0.8011953, 0.04511107 -> 0.0451111
    assert 'loss 2.74216 → 1.63493' in text
    assert panel.blocks[0][0][0] == 'step 0 of 5: the start'


@pytest.mark.parametrize('opt,kind', [(SGD, 'sgd'), (partial(SGD, wd=.1), 'sgd'), (partial(SGD, wd=.1, decouple_wd=False), 'sgd'),
                                      (partial(SGD, mom=.9), 'momentum'), (partial(SGD, mom=.9, wd=.05), 'momentum'),
                                      (Adam, 'adam'), (partial(Adam, wd=0.), 'adam')])
def test_each_update_rule_reproduces_the_recorded_step(opt, kind):
    "The panel's arithmetic (fastai's update from the recorded state and hypers) gives the parameters the step made."
    learn = fitted(12, opt_func=opt, lr=.05)
    h = learn.param_history
    assert step_kind(h.opt_cbs) == kind
    d = {k: v.double().numpy() if isinstance(v, torch.Tensor) else v for k, v in h.step_data.items()}
    after = h.flat.double().numpy()
    for i in range(1, len(h)):
        np.testing.assert_allclose(step_update(kind, d, i, 'l2_reg' not in h.opt_cbs), after[i], rtol=2e-6, atol=2e-7)
    if kind != 'sgd':  # the state before a step is the state after the one before it
        np.testing.assert_allclose(d['grad_avg_before'][2:], d['grad_avg'][1:-1])


def test_momentum_and_adam_panels_show_their_state():
    mom = StepPanel(learn := fitted(3, opt_func=partial(SGD, mom=.9)), Records.from_history(learn.param_history, 10))
    text = '\n'.join(mom.blocks[0][2])
    assert 'SGD with momentum, lr 0.1, mom 0.9' in text and 'grad_avg ← mom·grad_avg + ∂L/∂p' in text
    d = learn.param_history.step_data
    assert has(text, 'b grad_avg =', f"0.9×({d['grad_avg_before'][2, 1]:.5g})", '+', f"({d['grad'][2, 1]:.5g})", '=',
               f"({d['grad_avg'][2, 1]:.5g})")
    adam = StepPanel(learn := fitted(3, opt_func=Adam), Records.from_history(learn.param_history, 10))
    text = '\n'.join(adam.blocks[0][1])
    assert 'Adam, lr 0.1, wd 0.01' in text and 'sqr_avg ← sqr_mom·sqr_avg + (1-sqr_mom)·g²' in text and 't = 1' in text
    d = learn.param_history.step_data
    assert has(text, 'sqr_avg =', '0.99×0', '+', f"0.01×{float(d['grad'][1, 1]) ** 2:.5g}", '=', f"{d['sqr_avg'][1, 1]:.5g}")


def test_other_optimizers_show_the_update_they_made():
    learn = fitted(3, opt_func=RMSProp, lr=.01)
    panel = StepPanel(learn, Records.from_history(learn.param_history, 10))
    assert step_kind(learn.param_history.opt_cbs) == 'other'
    assert 'rms_prop_step' in panel.blocks[0][1][0] and "p ← p + (the optimizer's update)" in panel.blocks[0][1]


def test_minibatch_says_batch_loss():
    learn = fitted(2, dls=synth_linear(n=64, seed=0).dataloaders(bs=16, valid_pct=0))
    panel = StepPanel(learn, Records.from_history(learn.param_history, 100))
    assert panel.blocks[0][3][-1].startswith('batch loss') and 'this batch → the next' in panel.blocks[0][3][-1]


def test_grads_are_thinned_with_the_parameters():
    learns = [regression_learner(seed3_dls(), LinearModel(init=dict(w=[0.], b=0.)), history=False,
                                 cbs=ParamHistory(max_records=m)) for m in (2000, 7)]
    for learn in learns:
        with learn.no_bar(), learn.no_logging(): learn.fit(40)
    big, small = (lrn.param_history for lrn in learns)
    s = torch.as_tensor(small.steps)
    assert len(small) <= 7 and small.steps[-1] == 40
    for k in ('grad', 'before'): torch.testing.assert_close(small.step_data[k][1:], big.step_data[k][s][1:])
    np.testing.assert_allclose(small.step_data['loss_before'][1:], big.step_data['loss_before'][small.steps][1:])
    torch.testing.assert_close(small.step_data['before'][1:], big.flat[s[1:] - 1])  # the parameters one step before


def test_history_stays_within_its_byte_budget():
    "Recording gradients makes a record bigger: a model with big records keeps fewer of them, within max_bytes."
    x = torch.randn(32, 1)
    def f(x, p): return x[:, 0] * p['a'] + p['v'].mean()
    from fastfit.all import FuncModel
    for grads, budget in ((False, 2**20), (True, 2**20), (True, 10 * 2**20)):
        learn = regression_learner(RegDataLoaders.from_arrays(x, 2 * x, valid_pct=0), FuncModel(f, {'a': 1., 'v': torch.zeros(4999)}),
                                   history=False, cbs=ParamHistory(grads=grads, max_bytes=budget))
        with learn.no_bar(), learn.no_logging(): learn.fit(300)
        h = learn.param_history
        held = sum(t.element_size() * t.nelement() for t in [h._flat, *h._g.values()])
        assert held <= budget and h.steps[-1] == 300 and h.rows < 300
        assert h.rows == max(3, budget // (4 * 5000 * (3 if grads else 1) + 64))
    with pytest.raises(ValueError, match='max_bytes must be > 0'): ParamHistory(max_bytes=0)


def test_torch_copies_record_what_numpy_views_record():
    "The path of CUDA parameters (torch copies, one cat per buffer) records the CPU path's step data (checked on the CPU)."
    class TorchPath(ParamHistory): numpy_views = False
    datas = []
    for h in (ParamHistory(max_records=6), TorchPath(max_records=6)):
        learn = regression_learner(synth_linear(n=50).dataloaders(bs=16), opt_func=Adam, history=False, cbs=[h])
        with learn.no_bar(), learn.no_logging(): learn.fit(4)
        datas.append(h.step_data)
    for k, v in datas[0].items():
        if isinstance(v, torch.Tensor): torch.testing.assert_close(v, datas[1][k], equal_nan=True)
        else: np.testing.assert_array_equal(v, datas[1][k])


def test_a_grad_replaced_by_torch_is_followed():
    "torch's zero_grad(set_to_none=True) makes each gradient anew: the history follows (no stale views)."
    from fastai.callback.core import Callback
    class SetToNone(Callback):
        order = 99
        def after_step(self):
            for p in self.learn.model.parameters(): p.grad = None
    learn = fitted(4, cbs=SetToNone())
    ref = fitted(4)
    torch.testing.assert_close(learn.param_history.step_data['grad'], ref.param_history.step_data['grad'], equal_nan=True)


def test_step_panel_needs_gradients_and_says_how_to_record_them():
    learn = regression_learner(seed3_dls(), history=False, cbs=ParamHistory(grads=False))
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    with pytest.raises(ValueError, match=r"the 'step' panel needs each step's gradients .*ParamHistory\(grads=True\)"):
        learn.animate(panels=('fit', 'step'))
    with pytest.raises(ValueError, match=r'record them with ParamHistory\(grads=True\)'): learn.param_history.grads


def test_step_frames_blit_with_cached_glyphs(tmp_path):
    "Every line of the panel is laid out by the glyph cache (no fallback to matplotlib's text), and no frame is redrawn whole."
    learn = fitted(30, opt_func=Adam)
    fr = learner_frames(learn, 31, ('fit', 'step'), 60, 'test')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the blitted frame differs from a full draw: a warning
        with Renderer(fr, check=True) as r:
            for k in range(len(fr)): r.frame(k)
            assert not r.full and not r.whole
            if not glyphs._INTERNALS: return  # this matplotlib (< 3.10) has no per-glyph text: matplotlib draws it
            step = fr.panels[1]
            face = GlyphText(r.canvas.get_renderer())._face(step.texts[0].get_fontproperties())
            for f in step.blocks[0]:
                for line in f: assert face.line(line) is not None, line


def test_every_frame_is_one_step_when_frames_cover_the_steps():
    learn = fitted(12)
    recs = Records.from_history(learn.param_history, 13)
    assert list(recs.steps) == list(range(13))
    panel = StepPanel(learn, recs)
    assert [f[0].split(' ·')[0].split(':')[0] for f in panel.blocks[0]] == [f"step {k} of 12" for k in range(13)]


def test_many_parameters_show_the_first_and_count_the_rest():
    learn = regression_learner(synth_linear(n=40).dataloaders(bs=None, valid_pct=0), PolyModel(8), lr=1e-3)
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    panel = StepPanel(learn, Records.from_history(learn.param_history, 5))
    assert '... and 3 more parameters' in panel.blocks[0][1] and sum(ln.startswith('c') for ln in panel.blocks[0][1]) == 6


def test_several_runs_each_get_a_block_in_their_colour():
    "compare_optimizers(...).animate(panels=('surface', 'step')): one block per run, stacked, blitted like the rest."
    from fastfit.all import compare_optimizers
    cmp = compare_optimizers(seed3_dls(), {'SGD': SGD, 'momentum': partial(SGD, mom=.9), 'Adam': Adam}, lr=.1, epochs=6)
    fr = cmp.frames(7, panels=('surface', 'step'), dpi=40)
    step = fr.panels[1]
    assert [b[3][0].split(':')[0] for b in step.blocks] == ['SGD', 'momentum', 'Adam']
    assert [t.get_color() for t in step.texts] == step.colors and len(set(step.colors)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        with Renderer(fr, check=True) as r:
            for k in range(len(fr)): r.frame(k)
            assert not r.full and not r.whole
    fr.fig.canvas.draw()
    boxes = [t.get_window_extent() for t in step.texts]
    assert all(a.y0 > b.y1 for a, b in zip(boxes, boxes[1:]))  # stacked, not overlapping


def test_the_model_as_it_is_shows_its_last_step():
    learn = fitted(3)
    panel = StepPanel(learn, Records.current(learn))
    assert panel.blocks[0][0][0].startswith('step 3 of 3')


def test_parameter_groups_show_their_own_lr_and_weight_decay():
    "Groups trained at different lrs: the head gives the range, each row its own group's lr; one weight decay is one number."
    learn = regression_learner(seed3_dls(), LinearModel(init=dict(w=[-0.1382643], b=0.49671415)), splitter=lambda m: [[m.w], [m.b]],
                               opt_func=partial(SGD, wd=.1))
    with learn.no_bar(), learn.no_logging(): learn.fit(3, lr=slice(1e-3, 1e-1))
    lines = StepPanel(learn, Records.from_history(learn.param_history, 10)).blocks[0][2]
    assert lines[0] == 'step 2 of 3 · plain SGD, lr 0.001 to 0.1 (per parameter group), wd 0.1'
    assert re.search(r'^w = +-[\d.]+×0\.9999 - +0\.001×\(', lines[2]) and re.search(r'^b = +[\d.]+×0\.99 - +0\.1×\(', lines[3])
    learn = fitted(2, opt_func=partial(SGD, wd=.1))
    assert StepPanel(learn, Records.from_history(learn.param_history, 10)).blocks[0][1][0] == 'step 1 of 2 · plain SGD, lr 0.1, wd 0.1'
