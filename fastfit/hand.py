"""Fitting by hand: `fit_by_hand` gives one slider per parameter, the picture and the loss following them (ipywidgets in
a kernel, drawn by the panels and renderer of the animations), and a button that lets gradient descent take over from
where the sliders are. `save_fit_by_hand` writes the same as a page that needs no kernel: the data and the model's
formula go into it, the curve and the loss are computed in the browser, over the still part fastfit drew."""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call

from .classify import BCEWithLogits, classification_learner, is_classifier
from .data import ClsDataLoaders, RegDataLoaders, SynthData
from .learner import regression_learner
from .live import LivePicture, in_notebook, png_of
from .models import LinearModel, MLPModel, PolyModel, flat_names
from .panels import FitPanel
from .records import Records
from .render import Renderer

__all__ = ['fit_by_hand', 'save_fit_by_hand', 'FitByHand']

WIDGETS_HINT = ("fit_by_hand's sliders need ipywidgets: pip install 'fastfit-gd[widgets]' (or ipywidgets), then restart the "
                "kernel; save_fit_by_hand('hand.html', dls, model) writes a page with the same sliders that needs nothing")


def _loss_kind(loss_func) -> str|None:
    "'mse', 'mae' or 'bce' for the losses the page computes in the browser (None for others)."
    if isinstance(loss_func, BCEWithLogits): return 'bce'
    name = getattr(loss_func, '__name__', '')
    return {'mse_loss': 'mse', 'l1_loss': 'mae'}.get(name)


LOSS_NAMES = {'mse': 'MSE', 'mae': 'MAE', 'bce': 'cross-entropy'}


def _hand_learner(dls, model, loss_func):
    "A learner (no history, no training) that holds the data, the model and the loss the panels draw."
    if isinstance(dls, SynthData): dls = dls.dataloaders(bs=None, valid_pct=0)
    if not isinstance(dls, RegDataLoaders):
        raise TypeError(f"dls must be DataLoaders (RegDataLoaders, ClsDataLoaders) or a SynthData (from a synth_* generator), "
                        f"got {type(dls).__name__}")
    if isinstance(dls, ClsDataLoaders):
        return classification_learner(dls, model=model, loss_func=loss_func, history=False, metrics=None)
    return regression_learner(dls, model=model, loss_func=loss_func, history=False)


def _nice(v:float, up:bool) -> float:
    "A round number at or beyond `v` (up: above it; else below)."
    if v == 0: return 0.
    mag = 10 ** math.floor(math.log10(abs(v)))
    return float((math.ceil if up else math.floor)(v / mag * 2) / 2 * mag)


class FitByHand:
    """Sliders for a model's parameters, the picture of the fit and its loss following them: `set(...)` them, `step(n)`
    lets gradient descent move them, `loss()` is the training loss there. In a notebook it shows as ipywidgets
    sliders over fastfit's picture (`widget()`); `save('hand.html')` writes a page that works without a kernel."""
    def __init__(self,
        dls, # DataLoaders (RegDataLoaders, ClsDataLoaders) or a SynthData: what to fit
        model=None, # LinearModel, PolyModel, LogisticModel, an MLPModel of one hidden ReLU layer, ...; default as the learners'
        loss_func=None, # default: MSE (regression), cross-entropy (classes); F.l1_loss for the MAE
        panels=('fit',), # the picture: names from `PANELS` or `Panel` subclasses
        lr:float=.1, # the learning rate of "let gradient descent do it"
        ranges:dict|None=None, # {flat name: (lo, hi)} of any slider; default: around the start, the truth and the optimum
        dpi:float=100, # resolution
    ):
        self.learn = _hand_learner(dls, model, loss_func)
        self.model, self.panels, self.lr, self.dpi = self.learn.model, panels, float(lr), dpi
        if not self.lr > 0: raise ValueError(f"lr must be > 0, got {lr!r}: e.g. lr=.1")
        named = [(k, p.detach().cpu().clone()) for k, p in self.model.named_parameters()]
        self.layout = [(k, tuple(p.shape)) for k, p in named]
        self.names = flat_names(self.layout)
        self.theta = torch.cat([p.reshape(-1) for _, p in named]).float()  # the sliders' values, flat
        self.start = self.theta.clone()
        self.ranges = self._ranges(ranges or {})
        self.steps, self.pic, self._widget = 0, None, None

    # -- the state -----------------------------------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        "The parameters the sliders are at, by name (as `learn.model.named_parameters()` gives them)."
        out, i = {}, 0
        for k, s in self.layout:
            n = int(np.prod(s))
            out[k] = self.theta[i:i + n].reshape(s).clone()
            i += n
        return out

    def values(self) -> dict:
        "{flat name: value} of every slider."
        return dict(zip(self.names, self.theta.tolist()))

    def set(self, values:dict|None=None, **kw):
        "Move sliders: `set(c2=1.5)`, or `set({'l1.w[0]': 2.})` for names that are not Python names."
        vals = {**(values or {}), **kw}
        bad = [k for k in vals if k not in self.names]
        if bad: raise ValueError(f"no slider named {bad}: the sliders are {self.names}")
        for k, v in vals.items(): self.theta[self.names.index(k)] = float(v)
        self._redraw()
        return self

    def loss(self) -> float:
        "The training loss (the learner's `loss_func` on every training point) at the sliders' values."
        return self.learn.train_loss(self.params)

    @property
    def loss_name(self) -> str:
        k = _loss_kind(self.learn.loss_func)
        return LOSS_NAMES.get(k) or getattr(self.learn.loss_func, '__name__', type(self.learn.loss_func).__name__)

    def grad(self) -> torch.Tensor:
        "The gradient of the training loss at the sliders' values, flat (as the sliders)."
        dl, learn = self.learn.dls.train, self.learn
        theta = self.theta.clone().requires_grad_(True)
        ps, i = {}, 0
        for k, s in self.layout:
            n = int(np.prod(s)); ps[k] = theta[i:i + n].reshape(s); i += n
        loss = learn.loss_func(functional_call(learn.model, ps, (dl.x.cpu(),)), dl.y.cpu())
        loss.backward()
        return theta.grad.detach()

    def step(self, n:int=1, lr:float|None=None):
        "Let gradient descent take `n` steps of plain SGD (full batch) from where the sliders are."
        lr = self.lr if lr is None else float(lr)
        for _ in range(int(n)):
            self.theta -= lr * self.grad()
            self.steps += 1
        self._redraw()
        return self

    def reset(self):
        "Sliders back to the start."
        self.theta, self.steps = self.start.clone(), 0
        self._redraw()
        return self

    # -- the picture ---------------------------------------------------------------------------------------------------
    def records(self) -> Records:
        return Records([self.params], [None], [self.loss()])

    def picture(self) -> bytes:
        "The picture at the sliders' values, PNG bytes (fastfit's panels and renderer: only the moving artists redrawn)."
        if self.pic is None: self.pic = LivePicture(self.learn, self.records(), self.panels, self.dpi)
        else: self.pic.renew(self.records())
        return png_of(self.pic.draw())

    def title(self) -> str:
        after = f"   after {self.steps} gradient step{'s' if self.steps > 1 else ''}" if self.steps else ''
        return f"loss ({self.loss_name}) = {self.loss():.6g}{after}"

    def _ranges(self, given) -> list:
        "(lo, hi) of each slider: around the start, the true values and the optimum (where known), in round numbers."
        bad = [k for k in given if k not in self.names]
        if bad: raise ValueError(f"ranges names {bad}, which are not sliders: choose from {self.names}")
        marks = [self.theta.tolist()]
        truth = getattr(self.learn.dls, 'truth', None) or {}
        for ps in (truth, self._optimum()):
            try: marks.append(torch.cat([torch.as_tensor(ps[k]).float().reshape(-1) for k, _ in self.layout]).tolist())
            except (KeyError, TypeError, RuntimeError): pass
        out = []
        for i, name in enumerate(self.names):
            if name in given:
                lo, hi = map(float, given[name])
                if not lo < hi: raise ValueError(f"ranges[{name!r}] must be (lo, hi) with lo < hi, got {given[name]!r}")
                out.append((lo, hi)); continue
            vs = [m[i] for m in marks]
            lo, hi = min(vs), max(vs)
            pad = max(hi - lo, 1., .5 * max(abs(lo), abs(hi)))
            out.append((_nice(lo - pad, False), _nice(hi + pad, True)))
        return out

    def _optimum(self) -> dict:
        try: return self.learn.optimum()
        except (TypeError, ValueError): return {}

    # -- in a notebook -------------------------------------------------------------------------------------------------
    def widget(self):
        "The ipywidgets view: a slider per parameter, the picture and the loss, and the gradient-descent button."
        try:
            import ipywidgets as W
        except ImportError: raise ImportError(WIDGETS_HINT) from None
        if self._widget is not None: return self._widget
        self.sliders = []
        for name, (lo, hi), v in zip(self.names, self.ranges, self.theta.tolist()):
            s = W.FloatSlider(value=v, min=lo, max=hi, step=(hi - lo) / 400, description=name, readout_format='.4g',
                              continuous_update=True, layout=W.Layout(width='30em'))
            s.observe(self._slid, names='value')
            self.sliders.append(s)
        self.image = W.Image(value=self.picture(), format='png', layout=W.Layout(max_width='100%'))
        self.label = W.HTML(f"<b>{html.escape(self.title())}</b>")
        go = W.Button(description='let gradient descent do it', layout=W.Layout(width='auto'))
        n = W.BoundedIntText(value=20, min=1, max=10000, description='steps', layout=W.Layout(width='12em'))
        lr = W.BoundedFloatText(value=self.lr, min=1e-9, max=1e9, description='lr', layout=W.Layout(width='12em'))
        back = W.Button(description='start again')
        def run(_):
            for _ in range(n.value): self.step(1, lr.value)
        go.on_click(run)
        back.on_click(lambda _: self.reset())
        self._widget = W.VBox([self.label, W.HBox([W.VBox(self.sliders), W.VBox([W.HBox([go, back]), n, lr])]), self.image])
        return self._widget

    def _slid(self, change):
        if getattr(self, '_moving', False): return
        self.theta[self.sliders.index(change.owner)] = float(change.new)
        self._redraw(sliders=False)

    def _redraw(self, sliders:bool=True):
        if self._widget is None: return
        if sliders:
            self._moving = True
            try:
                for s, v in zip(self.sliders, self.theta.tolist()): s.value = min(max(v, s.min), s.max)
            finally: self._moving = False
        self.image.value = self.picture()
        self.label.value = f"<b>{html.escape(self.title())}</b>"

    def _ipython_display_(self):
        from IPython.display import display
        try: w = self.widget()
        except ImportError:
            print(WIDGETS_HINT)
            return
        # The widget where a kernel runs; the page (computed in the browser) where the widget cannot show.
        bundle = w._repr_mimebundle_()
        bundle['text/html'] = page_fragment(self)
        display(bundle, raw=True)

    def save(self, fname) -> Path:
        "Write the page (no kernel needed) to `fname` and return its path."
        from .writers import check_destination, write_atomic
        path = check_destination(fname)
        if path.suffix.lower() not in ('.html', '.htm'):
            raise ValueError(f"fname must end in .html (a page), got {str(fname)!r}: e.g. 'hand.html'")
        write_atomic(path, lambda tmp: Path(tmp).write_text(page_html(self), encoding='utf-8'))
        return path

    def __repr__(self):
        return f"<fit_by_hand: {self.model!r}, {len(self.names)} sliders, {self.title()}>"


def fit_by_hand(dls, model=None, loss_func=None, panels=('fit',), lr:float=.1, ranges:dict|None=None, dpi:float=100) -> FitByHand:
    """Sliders for `model`'s parameters on `dls` (DataLoaders or a SynthData), the picture and the loss following them,
    and a button "let gradient descent do it": ipywidgets in a kernel (`pip install 'fastfit-gd[widgets]'`). See `FitByHand`."""
    fh = FitByHand(dls, model, loss_func, panels, lr, ranges, dpi)
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
        except ImportError: print(WIDGETS_HINT)
    return fh


def save_fit_by_hand(fname, dls, model=None, loss_func=None, lr:float=.1, ranges:dict|None=None, dpi:float=100) -> Path:
    """Write `fname` (.html): the sliders of `fit_by_hand` as a self-contained page that needs no kernel and no network;
    the curve and the loss are computed in the browser (models: LinearModel, PolyModel, LogisticModel of one feature,
    MLPModel of one hidden ReLU layer; losses: MSE, MAE, cross-entropy). Returns its path."""
    return FitByHand(dls, model, loss_func, ('fit',), lr, ranges, dpi).save(fname)


# -- the page ----------------------------------------------------------------------------------------------------------
def _model_spec(model) -> dict:
    "What the page's script needs to compute the model: its kind and shape (its parameters are the sliders)."
    if isinstance(model, PolyModel): return {'kind': 'poly', 'degree': model.degree}
    if isinstance(model, LinearModel):  # LogisticModel too: a logit, its curve drawn as p = sigmoid(logit)
        return {'kind': 'linear', 'n_in': model.n_in, 'bias': bool(model.bias)}
    if isinstance(model, MLPModel) and len(model.hidden) == 1 and model.act_name == 'relu' and model.n_out == 1:
        return {'kind': 'mlp', 'n_in': model.n_in, 'hidden': model.hidden[0]}
    raise ValueError(f"save_fit_by_hand computes LinearModel, PolyModel, LogisticModel and MLPModel(hidden=(k,)) with "
                     f"act='relu' in the browser, got {model!r}: use one of those, or fit_by_hand(...) in a kernel")


def _floats(t) -> list:
    "Float32 values as the shortest decimals that give them back (the page computes in float64 on exactly these)."
    return [float(np.format_float_positional(v, unique=True, trim='-')) if np.isfinite(v) else 0.
            for v in np.asarray(t, dtype=np.float32).ravel()]


def _b64png(rgba) -> str:
    buf = io.BytesIO()
    from PIL import Image
    Image.fromarray(np.ascontiguousarray(rgba)).save(buf, format='PNG')
    return 'data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode()


MAX_PAGE_POINTS = 20_000  # the page computes the loss on every training point: bounded, so it stays light


def page_data(fh:FitByHand) -> dict:
    "Everything the page needs: the data, the model and its loss, the sliders, and the picture's still part and axes."
    learn = fh.learn
    kind = _loss_kind(learn.loss_func)
    if kind is None:
        raise ValueError(f"save_fit_by_hand computes the MSE (F.mse_loss), the MAE (F.l1_loss) and the binary cross-entropy "
                         f"in the browser, got loss_func={learn.loss_func!r}: use one of those, or fit_by_hand in a kernel")
    spec = _model_spec(learn.model)
    cls = is_classifier(learn)
    if cls and (spec['kind'] == 'poly' or learn.dls.n_in != 1 or kind != 'bce'):
        raise ValueError(f"save_fit_by_hand draws a classifier of one feature (p(class 1) against x) with one logit and "
                         f"cross-entropy, got {learn.dls.n_in} feature(s) and {learn.model!r}: use LogisticModel(n_in=1)")
    dl = learn.dls.train
    if len(dl.x) > MAX_PAGE_POINTS:
        raise ValueError(f"the page computes the loss on every training point, and dls has {len(dl.x):,} (at most "
                         f"{MAX_PAGE_POINTS:,}): make the data smaller, or use fit_by_hand in a kernel")
    fr = LivePicture(learn, fh.records(), ('fit',), fh.dpi)
    panel = fr.fr.panels[0]
    if not isinstance(panel, FitPanel): raise ValueError("save_fit_by_hand draws the 'fit' panel")
    with Renderer(fr.fr) as r:
        below, above = r.still()
        first = r.frame(0).copy()
    fig, ax = fr.fr.fig, panel.ax
    H = fig.bbox.height
    box = ax.get_window_extent()
    line = panel.line
    dpi = fig.dpi
    return dict(
        x=[_floats(row) for row in dl.x.cpu().numpy()], y=_floats(dl.y.cpu().numpy()), loss=kind, model=spec,
        names=fh.names, values=_floats(fh.theta.numpy()), ranges=[[lo, hi] for lo, hi in fh.ranges], lr=fh.lr,
        classifier=cls, loss_name=LOSS_NAMES[kind],
        grid=[_floats(row) for row in panel.xg.numpy()], xs=_floats(panel.xs),
        axes=dict(left=box.x0, top=H - box.y1, width=box.width, height=box.height, xlim=list(ax.get_xlim()),
                  ylim=list(ax.get_ylim())),
        line=dict(color=_hex(line.get_color()), width=line.get_linewidth() * dpi / 72),
        size=[int(fig.bbox.width), int(H)],
        images=dict(below=_b64png(below), above=_b64png(above), first=_b64png(first[..., :3])))


def _hex(c) -> str:
    from matplotlib.colors import to_hex
    return to_hex(c)


# The page's script: the model's formula and its gradient, the loss, the sliders, and gradient descent. Every number is
# a float64; the data are the float32 values fastfit fits, so the loss agrees with fastfit's to float32's round-off.
_JS = r"""
function fastfitHand(root) {
  const D = JSON.parse(root.querySelector('.ff-hand-data').textContent);
  const $ = c => root.querySelector('.ff-' + c);
  const M = D.model, n = D.y.length, P = D.values.length;
  let theta = D.values.slice(), steps = 0, timer = null;
  // the model's output for one input row, and its derivative by each parameter (into g)
  function out(th, x, g) {
    if (M.kind === 'poly') {
      let y = 0; for (let k = 0; k <= M.degree; k++) y = y * x[0] + th[k];
      if (g) { let p = 1; for (let k = M.degree; k >= 0; k--) { g[k] = p; p *= x[0]; } }
      return y;
    }
    if (M.kind === 'linear') {
      let y = M.bias ? th[M.n_in] : 0;
      for (let i = 0; i < M.n_in; i++) { y += th[i] * x[i]; if (g) g[i] = x[i]; }
      if (g && M.bias) g[M.n_in] = 1;
      return y;
    }
    // mlp: l1.w (n_in, h) row by row, l1.b (h), l2.w (h, 1), l2.b (1)
    const h = M.hidden, ni = M.n_in, w1 = 0, b1 = ni * h, w2 = b1 + h, b2 = w2 + h;
    let y = th[b2]; if (g) g[b2] = 1;
    for (let j = 0; j < h; j++) {
      let z = th[b1 + j]; for (let i = 0; i < ni; i++) z += x[i] * th[w1 + i * h + j];
      const a = z > 0 ? z : 0;
      y += a * th[w2 + j];
      if (g) { g[w2 + j] = a; const d = z > 0 ? th[w2 + j] : 0; g[b1 + j] = d; for (let i = 0; i < ni; i++) g[w1 + i * h + j] = d * x[i]; }
    }
    return y;
  }
  const sig = z => z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
  // the mean loss over the training data, and its gradient (into grad) when asked
  function loss(th, grad) {
    let s = 0; const g = grad ? new Float64Array(P) : null;
    if (grad) grad.fill(0);
    for (let r = 0; r < n; r++) {
      const p = out(th, D.x[r], g), t = D.y[r], e = p - t;
      let l, d;
      if (D.loss === 'mse') { l = e * e; d = 2 * e; }
      else if (D.loss === 'mae') { l = Math.abs(e); d = Math.sign(e); }
      else { l = Math.max(p, 0) - p * t + Math.log1p(Math.exp(-Math.abs(p))); d = sig(p) - t; }  // BCE with logits
      s += l;
      if (grad) for (let k = 0; k < P; k++) grad[k] += d * g[k] / n;
    }
    return s / n;
  }
  const A = D.axes, cv = $('curve'), ctx = cv.getContext('2d');
  cv.width = D.size[0]; cv.height = D.size[1];
  const px = x => A.left + (x - A.xlim[0]) / (A.xlim[1] - A.xlim[0]) * A.width;
  const py = y => A.top + (A.ylim[1] - y) / (A.ylim[1] - A.ylim[0]) * A.height;
  const sliders = [...root.querySelectorAll('.ff-param')];
  function fmt(v) { return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : (+v.toPrecision(4)).toString(); }
  function draw() {
    ctx.clearRect(0, 0, cv.width, cv.height);
    ctx.save(); ctx.beginPath(); ctx.rect(A.left, A.top, A.width, A.height); ctx.clip();
    ctx.strokeStyle = D.line.color; ctx.lineWidth = D.line.width; ctx.lineJoin = 'round'; ctx.lineCap = 'butt';
    ctx.beginPath();
    D.grid.forEach((x, i) => { let y = out(theta, x, null); if (D.classifier) y = sig(y);
      const Y = Math.max(-1e4, Math.min(1e4, py(y))); i ? ctx.lineTo(px(D.xs[i]), Y) : ctx.moveTo(px(D.xs[i]), Y); });
    ctx.stroke(); ctx.restore();
    const L = loss(theta, null);
    root.dataset.loss = L;
    $('loss').textContent = fmt(L);
    $('steps').textContent = steps ? ' after ' + steps + ' gradient step' + (steps > 1 ? 's' : '') : '';
    sliders.forEach((s, k) => { s.value = theta[k]; s.parentNode.querySelector('output').textContent = fmt(theta[k]); });
    $('values').value = D.names.map((nm, k) => nm + '=' + theta[k]).join('  ');
  }
  sliders.forEach((s, k) => s.addEventListener('input', () => { stop(); theta[k] = +s.value; draw(); }));
  const grad = new Float64Array(P);
  function stop() { if (timer) { clearInterval(timer); timer = null; $('go').textContent = 'let gradient descent do it'; } }
  function tick() {
    const lr = +$('lr').value;
    if (!(lr > 0)) { stop(); return; }
    loss(theta, grad);
    for (let k = 0; k < P; k++) theta[k] -= lr * grad[k];
    steps++;
    if (!theta.every(Number.isFinite)) { stop(); }
    draw();
    if (steps % 1000 === 0) stop();
  }
  $('go').onclick = () => { if (timer) stop(); else { timer = setInterval(tick, 40); $('go').textContent = 'stop'; } };
  $('reset').onclick = () => { stop(); theta = D.values.slice(); steps = 0; draw(); };
  $('first').hidden = true; $('stack').hidden = false; $('controls').hidden = false;
  draw();
  // kept on the element: a test (or a reader's console) can read the parameters and take one step
  return root.fastfitHand = {get theta() { return theta.slice(); }, set(k, v) { theta[k] = v; draw(); },
    loss: () => loss(theta, null), step: tick, stop};
}
"""

_CSS = """.ff-hand{font-family:system-ui,sans-serif;max-width:100%}
.ff-hand [hidden]{display:none!important}
.ff-hand .ff-stack{position:relative;display:inline-block;max-width:100%}
.ff-hand .ff-stack img{display:block;max-width:100%;height:auto}
.ff-hand .ff-stack canvas,.ff-hand .ff-stack .ff-above{position:absolute;left:0;top:0;width:100%;height:100%}
.ff-hand .ff-first{display:block;max-width:100%;height:auto}
.ff-hand .ff-grid{display:grid;grid-template-columns:auto minmax(8em,24em) 6em;gap:.2em .6em;align-items:center;margin:.4em 0}
.ff-hand .ff-row{display:contents} .ff-hand output{font-family:monospace}
.ff-hand .ff-title{font-size:1.1em;font-weight:600;margin:.3em 0}
.ff-hand .ff-values{width:100%;font-family:monospace;font-size:.85em}
.ff-hand .ff-buttons{display:flex;flex-wrap:wrap;gap:.5em;align-items:center;margin:.3em 0}"""


def page_markup(fh:FitByHand) -> str:
    "The page's markup (its data inside), before its script."
    d = page_data(fh)
    rows = ''.join(
        f'<label class="ff-row"><span>{html.escape(nm)}</span><input class="ff-param" type="range" min="{lo}" max="{hi}" '
        f'step="{(hi - lo) / 1000:g}" value="{v}" aria-label="{html.escape(nm)}"><output></output></label>'
        for nm, (lo, hi), v in zip(d['names'], d['ranges'], d['values']))
    data = json.dumps(d).replace('</', '<\\/')
    w, h = d['size']
    return (f'<div class="ff-hand">\n<div class="ff-title">loss ({d["loss_name"]}) = <span class="ff-loss">'
            f'{fh.loss():.6g}</span><span class="ff-steps"></span></div>\n'
            f'<img class="ff-first" alt="the fit at the sliders\' start" src="{d["images"]["first"]}" width="{w}" height="{h}">\n'
            f'<div class="ff-stack" hidden><img alt="the data" src="{d["images"]["below"]}" width="{w}" height="{h}">'
            f'<canvas class="ff-curve"></canvas><img class="ff-above" alt="" src="{d["images"]["above"]}"></div>\n'
            f'<div class="ff-controls" hidden><div class="ff-grid">{rows}</div>\n'
            f'<div class="ff-buttons"><button class="ff-go">let gradient descent do it</button>'
            f'<label>lr <input class="ff-lr" type="number" value="{d["lr"]:g}" step="any" min="0" style="width:6em"></label>'
            f'<button class="ff-reset">start again</button></div>\n'
            f'<label>the parameters now (copy them): <input class="ff-values" readonly></label></div>\n'
            f'<script type="application/json" class="ff-hand-data">{data}</script>\n</div>')


def page_html(fh:FitByHand) -> str:
    "The self-contained page: no network, no kernel."
    title = f"fit {fh.model!r} by hand"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f'<link rel="icon" href="data:,">\n<style>body{{margin:1em}} {_CSS}</style></head><body>\n'
            f'<h3 style="font-family:system-ui,sans-serif">{html.escape(title)}</h3>\n{page_markup(fh)}\n'
            f'<script>{_JS}\nfastfitHand(document.querySelector(".ff-hand"));\n</script></body></html>\n')


_SHOWN = 0


def page_fragment(fh:FitByHand) -> str:
    """The page as a notebook output's text/html: its style, markup and script (run where the front end runs an output's
    scripts: a trusted notebook, exported HTML, the docs site); elsewhere the picture of the start shows."""
    import hashlib
    global _SHOWN
    _SHOWN += 1  # an id of its own on a page of many (the same each time a notebook is run again)
    markup = page_markup(fh)
    uid = f"ff-hand-{hashlib.sha1(markup.encode()).hexdigest()[:8]}-{_SHOWN}"
    markup = markup.replace('<div class="ff-hand">', f'<div class="ff-hand" id="{uid}">', 1)
    return (f'<style>{_CSS}</style>\n{markup}\n'
            f'<script>(function () {{\n{_JS}\nfastfitHand(document.getElementById("{uid}"));\n}})();</script>')
