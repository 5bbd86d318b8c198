"Command line: `fastfit demo` and `fastfit fit ...` (parsed by fastcore's `parse_cli` from the signatures)."
from __future__ import annotations

import io
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Annotated

from fastcore.script import anno_parser, call_parse, parse_cli

__all__ = ['main', 'demo', 'fit', 'run_fit', 'synth', 'Diverged']

DATA = ('linear', 'multilinear', 'poly', 'rollercoaster')


USAGE = """usage: fastfit {demo,fit} [options]

  demo  fit the built-in default and write fit.gif + fit.html
  fit   fit a synthetic data set (fastfit fit --help for options)"""


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


def _check_out(paths, cmd):
    "Each output path's folder must exist, so a typo fails before the fit, not after it."
    for p in paths:
        d = Path(p).parent
        if not d.is_dir(): _die(f"--out {str(p)!r}: folder {str(d)!r} does not exist; create it first", cmd)


def _batch_size(bs:str) -> int|None:
    "`--bs` as the API takes it: a whole number > 0, or None for 'none' (full batch)."
    if bs.strip().lower() == 'none': return None
    try: v = int(bs)
    except ValueError: v = 0
    if v <= 0: _die(f"--bs must be a whole number > 0, or none for full batch, got {bs!r}", fit)
    return v


class Diverged(ValueError):
    "The fit's training loss became NaN/inf: the advice names the command's own flags."


def synth(data='linear', n=100, seed=42):
    "The synthetic data set `data` (for poly and rollercoaster: x standardised, so plain SGD takes an ordinary lr)."
    from .all import synth_linear, synth_multilinear, synth_poly, synth_rollercoaster
    s = dict(linear=lambda: synth_linear(n=n, seed=seed), multilinear=lambda: synth_multilinear(n=n, seed=seed),
             poly=lambda: synth_poly(seed=seed), rollercoaster=lambda: synth_rollercoaster(seed=seed))[data]()
    if data in ('poly', 'rollercoaster'):
        # Standardise x so plain SGD converges at an ordinary lr (raw time needs lr ~1e-5: see the seed 004 notebook).
        s.x = (s.x - s.x.mean()) / s.x.std()
        s.truth = None
    return s


def run_fit(data='linear', n=100, epochs=100, lr=.1, bs=64, out=('fit.gif',), frames=100, fps=20, seed=42, quiet=False):
    "Fit `data` with the default learner, write the animation to each of `out`, print a summary; return the learner."
    from .all import PolyModel, regression_learner
    t0 = time.perf_counter()
    s = synth(data, n, seed)
    model = PolyModel(2) if data in ('poly', 'rollercoaster') else None
    dls = s.dataloaders(bs=bs, valid_pct=0, seed=seed)
    learn = regression_learner(dls, model=model, lr=lr)
    # The learner's own advice on divergence speaks Python (lr=..., learn.lr_find()): the command speaks flags.
    with learn.no_bar(), learn.no_logging(), redirect_stdout(io.StringIO()): learn.fit(epochs)
    if learn.diverged is not None:
        raise Diverged(f"--lr {lr:g} made the training loss diverge (NaN/inf) at step {learn.diverged}, so the fit stopped "
                       f"and nothing was written: try --lr {lr / 10:g} (a tenth), or smaller")
    t_fit = time.perf_counter() - t0
    paths = [learn.save_animation(o, frames=frames, fps=fps) for o in out]
    t_all = time.perf_counter() - t0
    if not quiet: print(summary(learn, s, t_fit, t_all, paths))
    return learn


def summary(learn, s, t_fit, t_all, paths) -> str:
    "A table of the true, fitted and least-squares parameters, the final loss and the files written."
    h, fitted, opt = learn.param_history, dict(learn.model.named_parameters()), learn.ols()
    truth = s.truth or {}
    rows = [f"{'param':<8}{'true':>10}{'fitted':>10}{'optimal':>10}"]
    for k, p in fitted.items():
        for i, v in enumerate(p.detach().cpu().reshape(-1).tolist()):
            name = k if p.numel() == 1 else f"{k}[{i}]"
            t = truth.get(k)
            t = f"{float(t.reshape(-1)[i]):>10.4f}" if t is not None else f"{'-':>10}"
            rows.append(f"{name:<8}{t}{v:>10.4f}{float(opt[k].reshape(-1)[i]):>10.4f}")
    rows.append(f"{s.name}: n={len(s)}, {h.step} steps, final loss {float(h.losses[-1]):.4f}, "
                f"fit {t_fit:.2f}s, total {t_all:.2f}s")
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
    data:Annotated[str, "data set", dict(choices=DATA)]='linear',
    n:int=100, # number of points (linear, multilinear)
    epochs:int=100, # epochs (full batch: gradient steps)
    lr:float=.1, # learning rate
    bs:str='64', # batch size (fastai's default 64); none = full batch
    out:str='fit.gif', # output file(s): .gif, .html or .png; comma-separated
    frames:int=100, # frames in the animation
    fps:int=20, # frames per second
    seed:int=42, # random seed
):
    "Fit a synthetic data set and write its animation."
    if n <= 0: _die(f"--n must be > 0, got {n}", fit)
    if epochs <= 0: _die(f"--epochs must be > 0, got {epochs}", fit)
    if not 0 < lr < float('inf'): _die(f"--lr must be a finite number > 0, got {lr}: try --lr 0.1", fit)
    bs = _batch_size(bs)
    if frames <= 0: _die(f"--frames must be > 0, got {frames}", fit)
    if fps <= 0: _die(f"--fps must be > 0, got {fps}", fit)
    outs = [o for o in out.split(',') if o]
    from .writers import WRITERS
    bad = [o for o in outs if Path(o).suffix.lower() not in WRITERS]
    if not outs or bad: _die(f"--out {out!r}: each file must end in one of {', '.join(WRITERS)}", fit)
    _check_out(outs, fit)
    try: run_fit(data, n, epochs, lr, bs, outs, frames, fps, seed)
    except Diverged as e: _fail(str(e))
    except (ValueError, ImportError) as e: _die(str(e), fit)  # ImportError: .mp4 without the mp4 extra
    except OSError as e: _die(f"could not write --out {out!r}: {e}", fit)


def main(argv=None):
    "Entry point of the `fastfit` console script: `fastfit demo` or `fastfit fit [options]`."
    argv = list(sys.argv[1:] if argv is None else argv)
    cmds = dict(demo=demo, fit=fit)
    if not argv: _die("a command is required: demo or fit")
    if argv[0] in ('-h', '--help'):
        print(USAGE)
        return 0
    if argv[0] not in cmds: _die(f"unknown command {argv[0]!r}: choose from demo, fit")
    old = sys.argv
    sys.argv = [f'fastfit {argv[0]}'] + argv[1:]
    try:
        args, kwargs, _ = parse_cli(cmds[argv[0]])
        cmds[argv[0]](*args, **kwargs)
    finally: sys.argv = old
    return 0

