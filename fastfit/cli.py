"Command line: `fastfit demo`, `fastfit fit ...` and `fastfit --version` (parsed by fastcore's `parse_cli` from the signatures)."
from __future__ import annotations

import io
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Annotated

from fastcore.script import anno_parser, call_parse, parse_cli

from . import __version__

__all__ = ['main', 'demo', 'fit', 'run_fit', 'synth', 'Diverged']

# What `--data` offers: regression sets (a line, a plane, a cubic, fastbook's rollercoaster, a sine) and class sets.
DATA = ('linear', 'multilinear', 'poly', 'rollercoaster', 'sine', 'blobs', 'moons')
CLASSES = ('blobs', 'moons')
MODELS = ('default', 'mlp')
MAX_N = 10_000_000  # points the command line makes (x, y and a copy of each stay in memory: ~0.5 GB at this size)


USAGE = f"""usage: fastfit {{demo,fit}} [options]
       fastfit --version

  demo  fit the built-in default and write fit.gif + fit.html
  fit   fit a synthetic data set ({', '.join(DATA)}) and write its animation (fastfit fit --help for options)"""


def _die(msg, cmd=None):
    "Usage error: the usage line, `prog: error: msg` on stderr and exit status 2, as argparse does."
    if cmd is None:
        print(f"{USAGE}\nfastfit: error: {msg}", file=sys.stderr)
        raise SystemExit(2)
    anno_parser(cmd, prog=f'fastfit {cmd.__name__}').error(msg)


def _fail(msg):
    "A run that failed (not a usage error): `fastfit: error: msg` on stderr and exit status 1."
    print(f"fastfit: error: {msg}", file=sys.stderr)
    raise SystemExit(1)


def _check_out(paths, fps, cmd):
    "Each output file's suffix, folder and fps (a GIF plays at most 50 fps), and the mp4 extra: checked before the fit."
    from .writers import WRITERS, check_export
    for p in paths:
        d = Path(p).parent
        if Path(p).suffix.lower() not in WRITERS: _die(f"--out {str(p)!r}: each file must end in one of {', '.join(WRITERS)}", cmd)
        if not d.is_dir(): _die(f"--out {str(p)!r}: folder {str(d)!r} does not exist; create it first", cmd)
        try: check_export(p, fps)
        except ImportError as e: _die(str(e), cmd)  # .mp4 without the mp4 extra
        except ValueError as e: _die(_flags(str(e)), cmd)


def _flags(msg:str) -> str:
    "A library message in the command's words: `fps=...` is `--fps ...`."
    return msg.replace('fps must', '--fps must').replace('fps=', '--fps ').replace('use fps ', 'use --fps ')


def _batch_size(bs:str, cmd) -> int|None:
    "`--bs` as the API takes it: a whole number > 0, or None for 'none' (full batch)."
    if bs.strip().lower() == 'none': return None
    try: v = int(bs)
    except ValueError: v = 0
    if v <= 0: _die(f"--bs must be a whole number > 0, or none for full batch, got {bs!r}", cmd)
    return v


class Diverged(ValueError):
    "The fit's training loss became NaN/inf: the advice names the command's own flags."


def synth(data='linear', n=100, seed=42):
    "The synthetic data set `data` (`--n` points; rollercoaster is fastbook's 20)."
    import torch

    from .all import synth_blobs, synth_func, synth_linear, synth_moons, synth_multilinear, synth_poly, synth_rollercoaster
    make = dict(linear=lambda: synth_linear(n=n, seed=seed), multilinear=lambda: synth_multilinear(n=n, seed=seed),
                # a cubic, y = x^3 - 3x + 1 on [-2, 2]: a curve with two bends (fastbook's rollercoaster is a parabola)
                poly=lambda: synth_poly(coeffs=(1., 0., -3., 1.), x=torch.linspace(-2, 2, n), noise=.3, seed=seed),
                rollercoaster=lambda: synth_rollercoaster(seed=seed),
                sine=lambda: synth_func(torch.sin, n=n, x_range=(-3, 3), noise=.1, seed=seed),
                blobs=lambda: synth_blobs(n=n, seed=seed), moons=lambda: synth_moons(n=n, seed=seed))
    return make[data]()


def _model(data, model, hidden, n_in):
    "The model `--model` asks for on `data` (None: the learner's default)."
    from .all import MLPModel, PolyModel
    if model == 'mlp': return MLPModel(n_in=n_in, hidden=hidden)
    if data == 'poly': return PolyModel(3)
    if data == 'rollercoaster': return PolyModel(2)
    return None


def run_fit(data='linear', n=100, epochs=100, lr=.1, bs=64, out=('fit.gif',), frames=100, fps=20., seed=42, model='default',
            hidden=(16,), quiet=False):
    "Fit `data` with the default learner (or an MLP), write the animation to each of `out`, print a summary; return the learner."
    t0 = time.perf_counter()
    from .all import classification_learner, regression_learner
    t_import = time.perf_counter() - t0
    s = synth(data, n, seed)
    # poly and rollercoaster: x standardised, so plain SGD takes an ordinary lr (raw time needs ~1e-5: see notebook 04);
    # the pictures stay in the data's own units
    dls = s.dataloaders(bs=bs, valid_pct=0, seed=seed, normalize=data in ('poly', 'rollercoaster'))
    make = classification_learner if data in CLASSES else regression_learner
    learn = make(dls, model=_model(data, model, hidden, dls.n_in), lr=lr)
    # The learner's own advice on divergence speaks Python (lr=..., learn.lr_find()): the command speaks flags.
    t1 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(), redirect_stdout(io.StringIO()): learn.fit(epochs)
    if learn.diverged is not None:
        raise Diverged(f"--lr {lr:g} made the training loss diverge (NaN/inf) at step {learn.diverged}, so the fit stopped "
                       f"and nothing was written: try --lr {lr / 10:g} (a tenth), or smaller")
    t2 = time.perf_counter()
    panels = ('boundary', 'loss') if data in CLASSES else ('fit',)
    paths = [learn.save_animation(o, frames=frames, fps=fps, panels=panels) for o in out]
    t3 = time.perf_counter()
    if not quiet: print(summary(learn, s, dict(imports=t_import, fit=t2 - t1, files=t3 - t2), paths))
    return learn


def _optimum(learn) -> dict|None:
    "The loss's minimiser when fastfit knows it, else None (an MLP, separable classes)."
    try: return learn.optimum()
    except (TypeError, ValueError): return None


def summary(learn, s, times:dict, paths) -> str:
    "A table of the true, fitted and optimal parameters (a big model: their number), the final loss, the times and the files."
    h, dls = learn.param_history, learn.dls
    fitted = dict(learn.model.named_parameters())
    n_params = sum(p.numel() for p in fitted.values())
    rows = []
    if n_params <= 12:
        truth, opt = dls.truth or {}, _optimum(learn) or {}
        note = '   (model on standardised x)' if dls.norm is not None else ''
        rows.append(f"{'param':<8}{'true':>10}{'fitted':>10}{'optimal':>10}{note}")
        for k, p in fitted.items():
            for i, v in enumerate(p.detach().cpu().reshape(-1).tolist()):
                name = k if p.numel() == 1 else f"{k}[{i}]"
                def cell(d):
                    t = d.get(k)
                    try: return f"{float(t.reshape(-1)[i]):>10.4f}"
                    except (AttributeError, IndexError, RuntimeError, TypeError, ValueError): return f"{'-':>10}"
                rows.append(f"{name:<8}{cell(truth)}{v:>10.4f}{cell(opt)}")
    else: rows.append(f"{learn.model!r}")
    extra = ''
    if getattr(dls, 'n_classes', None):
        with learn.no_bar(), redirect_stdout(io.StringIO()): _, targs, decoded = learn.get_preds(ds_idx=0, with_decoded=True)
        extra = f", training accuracy {float((decoded.reshape(-1) == targs.reshape(-1)).float().mean()):.3f}"
    rows.append(f"{s.name}: n={len(s)}, {h.step} steps, final loss {float(h.losses[-1]):.4f}{extra}")
    rows.append(f"time: fit {times['fit']:.2f} s, animation {times['files']:.2f} s, after {times['imports']:.2f} s importing "
                f"fastfit, fastai and torch (Python's own start not counted)")
    rows += [f"wrote {p} ({Path(p).stat().st_size / 1024:.0f} KiB)" for p in paths]
    return '\n'.join(rows)


# `main` parses the arguments of the command asked for with `parse_cli` (call_parse's parsing half), so that
# one console script carries both commands; called from Python, these are plain functions.
@call_parse
def demo(
    out_dir:str='.', # folder for fit.gif and fit.html
    frames:int=100, # frames in the animation
):
    "Fit synth_linear() (100 points) for 100 full-batch steps; write fit.gif and fit.html; print a summary."
    d = Path(out_dir)
    if not d.is_dir(): _die(f"--out-dir {out_dir!r} is not a folder: create it first, or leave it out to use '.'", demo)
    if frames <= 0: _die(f"--frames must be > 0, got {frames}", demo)
    try: run_fit(bs=None, out=(d / 'fit.gif', d / 'fit.html'), frames=frames)
    except OSError as e: _die(f"could not write to --out-dir {out_dir!r}: {e}", demo)


@call_parse
def fit(
    data:Annotated[str, "data set: regression (linear, multilinear, poly: a cubic, rollercoaster: fastbook's, sine) or "
                        "classes (blobs, moons)", dict(choices=DATA)]='linear',
    n:int=100, # number of points (rollercoaster: always fastbook's 20)
    model:Annotated[str, "the model: default (a line, a plane, a polynomial; logistic regression for classes) or mlp "
                         "(a net: its hidden sizes in --hidden)", dict(choices=MODELS)]='default',
    hidden:str='16', # with --model mlp: units of each hidden layer, comma-separated (e.g. 16 or 32,32)
    epochs:int=100, # epochs (full batch: gradient steps)
    lr:float=.1, # learning rate
    bs:str='64', # batch size (fastai's default 64); none = full batch
    out:str='fit.gif', # output file(s), comma-separated: .gif, .html (a player page), .mp4 (needs fastfit-gd[mp4]), .png (last frame)
    frames:int=100, # frames in the animation
    fps:float=20, # frames per second (at most 50: GIF viewers and browsers play no faster)
    seed:int=42, # random seed
):
    "Fit a synthetic data set and write its animation."
    if not 0 < n <= MAX_N:
        _die(f"--n must be > 0 and at most {MAX_N:,}, got {n:,}" + (": a command-line fit keeps every point in memory"
             if n > MAX_N else ''), fit)
    if data in ('blobs', 'moons') and n < 4: _die(f"--n must be >= 4 for --data {data} (two points of each class), got {n}", fit)
    if epochs <= 0: _die(f"--epochs must be > 0, got {epochs}", fit)
    if not 0 < lr < float('inf'): _die(f"--lr must be a finite number > 0, got {lr}: try --lr 0.1", fit)
    bs = _batch_size(bs, fit)
    try: hs = tuple(int(h) for h in hidden.split(','))
    except ValueError: hs = ()
    if not hs or min(hs) <= 0: _die(f"--hidden must be whole numbers > 0, comma-separated (e.g. 16 or 32,32), got {hidden!r}", fit)
    if frames <= 0: _die(f"--frames must be > 0, got {frames}", fit)
    if not 0 < fps < float('inf'): _die(f"--fps must be a finite number > 0, got {fps:g}", fit)
    outs = [o for o in out.split(',') if o]
    if not outs: _die(f"--out {out!r}: give at least one file; each file must end in one of .gif, .html, .mp4, .png", fit)
    _check_out(outs, fps, fit)
    try: run_fit(data, n, epochs, lr, bs, outs, frames, fps, seed, model, hs)
    except Diverged as e: _fail(str(e))
    except ValueError as e: _die(str(e), fit)
    except OSError as e: _die(f"could not write --out {out!r}: {e}", fit)


def main(argv=None):
    "Entry point of the `fastfit` console script: `fastfit demo`, `fastfit fit [options]` or `fastfit --version`."
    argv = list(sys.argv[1:] if argv is None else argv)
    cmds = dict(demo=demo, fit=fit)
    if not argv: _die("a command is required: demo or fit")
    if argv[0] in ('-h', '--help'):
        print(USAGE)
        return 0
    if argv[0] in ('-V', '--version'):
        print(f"fastfit {__version__}")
        return 0
    if argv[0] not in cmds: _die(f"unknown command {argv[0]!r}: choose from demo, fit")
    old = sys.argv
    sys.argv = [f'fastfit {argv[0]}'] + argv[1:]
    try:
        args, kwargs, _ = parse_cli(cmds[argv[0]])
        cmds[argv[0]](*args, **kwargs)
    finally: sys.argv = old
    return 0
