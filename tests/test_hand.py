"fit_by_hand: sliders for the parameters (ipywidgets in a kernel) and the same as a page computed in the browser."
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastfit.all import (
    LinearModel,
    LogisticModel,
    MLPModel,
    PolyModel,
    fit_by_hand,
    huber,
    save_fit_by_hand,
    synth_blobs,
    synth_func,
    synth_linear,
    synth_poly,
)
from fastfit.hand import WIDGETS_HINT, FitByHand


def quad(): return synth_poly(coeffs=(3., 2., 1.), x=torch.linspace(-2, 2, 30), noise=.5, seed=0)


def one_feature_classes():
    "Two overlapping classes on one feature (a finite optimum)."
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(40, 1, generator=g) - 1, torch.randn(40, 1, generator=g) + 1])
    y = torch.cat([torch.zeros(40), torch.ones(40)]).long()
    from fastfit.all import ClsDataLoaders
    return ClsDataLoaders.from_arrays(x, y, valid_pct=0, bs=None)


# What the page computes in the browser: (data, model, loss_func), the lesson's models among them.
CASES = {
    'linear': lambda: (synth_linear(n=50, seed=1), LinearModel(), None),
    'linear-mae': lambda: (synth_linear(n=50, seed=1), LinearModel(), F.l1_loss),
    'quadratic-mae': lambda: (quad(), PolyModel(2, init={'c2': 1.1, 'c1': 1.1, 'c0': 1.1}), F.l1_loss),
    'logistic': lambda: (one_feature_classes(), LogisticModel(n_in=1), None),
    'one-relu': lambda: (synth_func(torch.sin, n=40, seed=0), MLPModel(hidden=(1,)), None),
    'two-relus': lambda: (quad(), MLPModel(hidden=(2,)), F.l1_loss),
}


def test_sliders_set_the_parameters_and_the_loss_is_fastfits():
    fh = fit_by_hand(quad(), PolyModel(2, init={'c2': 1.1, 'c1': 1.1, 'c0': 1.1}), loss_func=F.l1_loss)
    assert fh.names == ['c2', 'c1', 'c0'] and fh.loss_name == 'MAE'
    fh.set(c2=3., c1=2.).set({'c0': 1.})
    assert fh.values() == {'c2': 3., 'c1': 2., 'c0': 1.}
    assert fh.loss() == pytest.approx(fh.learn.train_loss({'c2': torch.tensor(3.), 'c1': torch.tensor(2.), 'c0': torch.tensor(1.)}))
    x, y = fh.learn.dls.train.x, fh.learn.dls.train.y
    assert fh.loss() == pytest.approx(float((3 * x ** 2 + 2 * x + 1 - y).abs().mean()), rel=1e-6)
    assert 'loss (MAE) = ' in fh.title()
    with pytest.raises(ValueError, match=r"no slider named \['a'\].*\['c2', 'c1', 'c0'\]"): fh.set(a=1)


def test_gradient_descent_takes_over_from_the_sliders():
    "The button's steps are plain full-batch SGD from where the sliders are: those of a fastai fit from there."
    from fastfit.all import regression_learner
    s = synth_linear(n=50, seed=1)
    fh = fit_by_hand(s, LinearModel(), lr=.1).set(w=-1., b=3.)
    before = fh.loss()
    fh.step(20)
    assert fh.loss() < before and fh.steps == 20
    learn = regression_learner(s.dataloaders(bs=None, valid_pct=0), model=LinearModel(init={'w': [-1.], 'b': 3.}), lr=.1)
    with learn.no_bar(), learn.no_logging(): learn.fit(20)
    assert fh.values()['w'] == pytest.approx(learn.model.w.item(), rel=1e-5)
    assert fh.values()['b'] == pytest.approx(learn.model.b.item(), rel=1e-5)
    fh.reset()
    assert fh.steps == 0 and fh.loss() == pytest.approx(fit_by_hand(s, LinearModel()).loss())


def test_slider_ranges_hold_the_start_the_truth_and_the_optimum():
    fh = fit_by_hand(synth_linear(n=50, a=3., b=2., seed=1), LinearModel(init={'w': [-4.], 'b': 0.}))
    (wlo, whi), (blo, bhi) = fh.ranges
    assert wlo < -4 < 3 < whi and blo < 0 < 2 < bhi
    fh = fit_by_hand(synth_linear(n=50, seed=1), LinearModel(), ranges={'w': (-10, 10)})
    assert fh.ranges[0] == (-10., 10.)
    with pytest.raises(ValueError, match="ranges names"): fit_by_hand(synth_linear(n=20), LinearModel(), ranges={'q': (0, 1)})
    with pytest.raises(ValueError, match=r"ranges\['w'\]"): fit_by_hand(synth_linear(n=20), LinearModel(), ranges={'w': (1, 0)})
    with pytest.raises(TypeError, match='dls must be'): fit_by_hand([1, 2, 3], LinearModel())


def test_the_widget_redraws_with_fastfits_renderer():
    pytest.importorskip('ipywidgets', reason="ipywidgets is missing: pip install 'fastfit-gd[widgets]'")
    fh = fit_by_hand(synth_linear(n=30, seed=0), LinearModel())
    w = fh.widget()
    assert len(fh.sliders) == 2 and [s.description for s in fh.sliders] == ['w', 'b']
    img, title = fh.image.value, fh.label.value
    fh.sliders[0].value = 2.5  # the reader drags w
    assert fh.values()['w'] == 2.5 and fh.image.value != img and fh.label.value != title
    assert f"{fh.loss():.6g}" in fh.label.value
    fh.step(3)  # the button: the sliders follow the steps
    assert fh.sliders[0].value == pytest.approx(fh.values()['w']) and w is fh.widget()
    # the picture is the 'fit' panel drawn by the animations' renderer at these parameters
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    from fastfit.all import Frames, Records
    from fastfit.render import frames_differ
    fr = Frames(fh.learn, Records([fh.params], [None], [fh.loss()]))
    fh0 = fit_by_hand(synth_linear(n=30, seed=0), LinearModel())  # the still part is that of the start
    fr0 = Frames(fh0.learn, fh0.records())
    fr0.panels[0].line.set_ydata(fr.panels[0].predss[0][0]); fr0.panels[0].text.set_text(fr.panels[0]._caption(0))
    canvas = FigureCanvasAgg(fr0.fig); canvas.draw()
    shown = np.asarray(Image.open(io.BytesIO(fh.image.value)).convert('RGB'))
    assert frames_differ(shown, np.asarray(canvas.buffer_rgba())[..., :3]) < 1e-3


def test_without_ipywidgets_it_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'ipywidgets', None)  # import ipywidgets fails
    fh = fit_by_hand(synth_linear(n=20, seed=0), LinearModel())
    with pytest.raises(ImportError, match=r"pip install 'fastfit-gd\[widgets\]'"): fh.widget()
    fh._ipython_display_()
    assert WIDGETS_HINT in capsys.readouterr().out
    assert "fastfit-gd[widgets]" in WIDGETS_HINT and 'save_fit_by_hand' in WIDGETS_HINT


def test_save_writes_a_page_and_refuses_what_it_cannot_compute(tmp_path):
    page = save_fit_by_hand(tmp_path / 'hand.html', synth_linear(n=20, seed=0), LinearModel())
    text = page.read_text()
    assert page.name == 'hand.html' and 'fastfitHand' in text and 'http' not in text.replace('http-equiv', '')
    with pytest.raises(ValueError, match=r"\.html"): save_fit_by_hand(tmp_path / 'hand.png', synth_linear(n=20), LinearModel())
    with pytest.raises(ValueError, match='loss_func'):
        save_fit_by_hand(tmp_path / 'h.html', synth_linear(n=20), LinearModel(), loss_func=huber(1.))
    with pytest.raises(ValueError, match='MLPModel'):
        save_fit_by_hand(tmp_path / 'h.html', synth_linear(n=20), MLPModel(hidden=(2, 2)))
    with pytest.raises(ValueError, match='one feature'):
        save_fit_by_hand(tmp_path / 'h.html', synth_blobs(n=40, seed=0), LogisticModel(n_in=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['hand.html']  # nothing half-written


# -- in Chromium: the page computes the curve and the loss itself --------------------------------------------------------
@pytest.fixture(scope='module')
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp('hand')
    out = {}
    for name, make in CASES.items():
        dls, model, loss = make()
        fh = FitByHand(dls, model, loss)
        out[name] = (fh, fh.save(folder / f'{name}.html'))
    return out


def opened(browser, path):
    ctx = browser.new_context(viewport={'width': 1000, 'height': 900}, device_scale_factor=1)
    pg = ctx.new_page()
    pg.requests, pg.errors = [], []
    pg.on('request', lambda r: pg.requests.append(r.url))
    pg.on('console', lambda m: m.type == 'error' and pg.errors.append(m.text))
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.goto(path.as_uri())
    pg.wait_for_function("document.querySelector('.ff-hand').fastfitHand !== undefined")
    return ctx, pg


def js_theta(pg) -> list: return pg.evaluate("document.querySelector('.ff-hand').fastfitHand.theta")
def js_loss(pg) -> float: return float(pg.evaluate("document.querySelector('.ff-hand').dataset.loss"))


@pytest.mark.parametrize('name', list(CASES))
def test_the_pages_loss_is_fastfits_at_any_sliders(browser, pages, name):
    "Sliders set in the browser: the loss the page shows equals fastfit's own loss there, to 1e-5 relative."
    fh, path = pages[name]
    ctx, pg = opened(browser, path)
    try:
        assert js_loss(pg) == pytest.approx(fh.loss(), rel=1e-5)  # at the start
        rng = np.random.default_rng(0)
        worst = 0.
        for _ in range(4):
            for k, (lo, hi) in enumerate(fh.ranges):  # drag each slider somewhere in its range, as a reader would
                v = float(rng.uniform(lo, hi))
                pg.evaluate("([k, v]) => { const s = document.querySelectorAll('.ff-param')[k]; s.value = v;"
                            " s.dispatchEvent(new Event('input')); }", [k, v])
            theta = js_theta(pg)  # the values the sliders took (on their step grid)
            fh.set(dict(zip(fh.names, theta)))
            py, js = fh.loss(), js_loss(pg)
            worst = max(worst, abs(js - py) / abs(py))
            assert js == pytest.approx(py, rel=1e-5), (theta, js, py)
        values = pg.input_value('.ff-values')  # the parameters as text to copy
        assert values.split('  ')[0].startswith(fh.names[0] + '=')
        assert pg.errors == [] and [u for u in pg.requests if not u.startswith(('file:', 'data:'))] == []
        print(f"{name}: JS vs fastfit loss, worst relative difference {worst:.2e}")
    finally: ctx.close()


@pytest.mark.parametrize('name', ['linear', 'quadratic-mae', 'logistic', 'two-relus'])
def test_the_pages_gradient_step_is_fastfits(browser, pages, name):
    "One step of the page's gradient descent = one step of fastfit's (torch's gradient), from the same sliders."
    fh, path = pages[name]
    ctx, pg = opened(browser, path)
    try:
        fh.reset()
        pg.evaluate("document.querySelector('.ff-hand').fastfitHand.step()")
        fh.step(1)
        assert js_theta(pg) == pytest.approx(fh.theta.tolist(), rel=1e-4, abs=1e-6)
        assert pg.text_content('.ff-steps').strip() == 'after 1 gradient step'
    finally: ctx.close()


def test_the_button_lets_gradient_descent_move_the_sliders(browser, pages):
    fh, path = pages['quadratic-mae']
    ctx, pg = opened(browser, path)
    try:
        start, loss0 = js_theta(pg), js_loss(pg)
        pg.click('.ff-go')
        pg.wait_for_function("document.querySelector('.ff-steps').textContent.includes('gradient steps')", timeout=20_000)
        pg.wait_for_timeout(400)
        pg.click('.ff-go')  # stop
        assert pg.text_content('.ff-go') == 'let gradient descent do it'
        moved = js_theta(pg)
        sliders = pg.evaluate("[...document.querySelectorAll('.ff-param')].map(s => +s.value)")
        assert moved != start and js_loss(pg) < loss0
        assert sliders == pytest.approx(moved, abs=max(hi - lo for lo, hi in fh.ranges) / 1000)  # the sliders followed
        pg.click('.ff-reset')
        assert js_theta(pg) == pytest.approx(start) and pg.errors == []
    finally: ctx.close()


def test_without_scripts_the_page_shows_the_start(browser, pages):
    fh, path = pages['linear']
    fh.reset()
    ctx = browser.new_context(java_script_enabled=False)
    try:
        pg = ctx.new_page()
        pg.goto(path.as_uri())
        assert pg.is_visible('.ff-first') and pg.is_hidden('.ff-stack') and pg.is_hidden('.ff-controls')
        assert f"{fh.loss():.6g}" in pg.text_content('.ff-title')
    finally: ctx.close()


def test_in_a_notebook_the_widget_and_the_page_where_no_kernel_runs(monkeypatch):
    "One output: the widget view (a live kernel) and, for front ends without one (docs, exported HTML), the page."
    pytest.importorskip('ipywidgets', reason="ipywidgets is missing: pip install 'fastfit-gd[widgets]'")
    import IPython.display
    got = []
    monkeypatch.setattr(IPython.display, 'display', lambda data, raw=False, **kw: got.append(data))
    fit_by_hand(synth_linear(n=20, seed=0), LinearModel())._ipython_display_()
    [bundle] = got
    assert 'application/vnd.jupyter.widget-view+json' in bundle
    page = bundle['text/html']
    assert '<iframe' not in page and 'fastfitHand(document.getElementById("ff-hand-' in page and '.ff-first' in page


def test_the_notebook_output_works_in_exported_html(browser, tmp_path):
    "The output a notebook stores, exported by nbconvert (as the docs site and `--to html` do): the page runs there."
    pytest.importorskip('ipywidgets'); pytest.importorskip('nbconvert')
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from fastfit.hand import page_fragment
    fh = fit_by_hand(quad(), PolyModel(2, init={'c2': 1.1, 'c1': 1.1, 'c0': 1.1}), loss_func=F.l1_loss)
    out = new_output('display_data', data={'text/html': page_fragment(fh), 'text/plain': repr(fh)})
    page, _ = HTMLExporter().from_notebook_node(new_notebook(cells=[new_code_cell('fit_by_hand(...)', outputs=[out])]))
    (tmp_path / 'nb.html').write_text(page)
    ctx = browser.new_context()
    try:
        pg = ctx.new_page()
        pg.goto((tmp_path / 'nb.html').as_uri())
        pg.wait_for_function("document.querySelector('.ff-hand') && document.querySelector('.ff-hand').dataset.loss")
        assert float(pg.evaluate("document.querySelector('.ff-hand').dataset.loss")) == pytest.approx(fh.loss(), rel=1e-5)
        assert pg.is_visible('.ff-stack') and pg.is_hidden('.ff-first')
    finally: ctx.close()
