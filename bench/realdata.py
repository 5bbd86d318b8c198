"""Real data (issue 25): fastbook's 3 vs 7 on scikit-learn's 8x8 digits (`digits()`), offline. Not a pass/fail test.

- held-out accuracy: the pixel-mean baseline, the linear model with binary cross-entropy (the default) and with
  fastbook's `mnist_loss`, 100 full-batch steps each;
- a fit of 100 full-batch epochs: fastfit's one-liner (history and `accuracy` on, as a user gets it; then without the
  history, without the metric) vs a hand-written torch loop (the training steps alone, and fastbook's loop: the steps plus
  the validation loss and accuracy each epoch, what fastfit's table shows; the fair baseline, the target is <= 2x it);
  the same parameters after every step, the same validation loss and accuracy after every epoch;
- the GIF of panels 'weights' + 'loss', 100 frames at the default dpi 100: `learn.save_animation` vs matplotlib's own
  `FuncAnimation.save(PillowWriter)` of the same figure;
- `learn.optimum()`: logistic regression on the 3s and 7s (65 parameters), softmax regression on all ten digits
  (10 x 65 parameters); both training sets are linearly separable, so both end in "no finite optimum" (ValueError).
One thread (torch.set_num_threads(1)); times are medians of interleaved repeats (the machine is shared).
Run: `python bench/realdata.py [repeats]` (in `make bench`)."""
import gc
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
import fastprogress.fastprogress as fp  # noqa: E402
from matplotlib.animation import PillowWriter  # noqa: E402
from PIL import Image  # noqa: E402

fp.NO_BAR = True
from fastfit.all import ClsDataLoaders, LogisticModel, SoftmaxModel, classification_learner, digits  # noqa: E402

EPOCHS, LR, FRAMES, FPS, DPI = 100, 1., 100, 20, 100


def mnist_loss(predictions, targets):
    "fastbook chapter 4's loss: how far sigmoid(prediction) is from the label."
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


def quiet_fit(learn, n=EPOCHS):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


def compare(fs:dict, repeats:int) -> dict:
    "Median seconds of each of `fs`, run round-robin so that load from other processes hits them all alike."
    ts = {k: [] for k in fs}
    for _ in range(repeats):
        for k, f in fs.items():
            gc.collect()
            t = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


def hand_loop(dls, validate:bool, record:list|None=None, valid_record:list|None=None):
    """What fastbook writes: the linear model, BCE of the logit, SGD by hand; with `validate`, its `validate_epoch`: the
    validation loss and accuracy (sigmoid > .5, fastbook's `batch_accuracy`) each epoch, read as numbers."""
    x, y, xv, yv = dls.train.x, dls.train.y.float(), dls.valid.x, dls.valid.y.float()
    yb = yv.bool()
    def run():
        model = LogisticModel(64)  # the same seeded start as fastfit's default model
        ps = list(model.parameters())
        for _ in range(EPOCHS):
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            loss.backward()
            with torch.no_grad():
                for p in ps:
                    p -= LR * p.grad
                    p.grad.zero_()
                if validate:
                    pv = model(xv)
                    vl, acc = F.binary_cross_entropy_with_logits(pv, yv).item(), ((pv.sigmoid() > .5) == yb).float().mean().item()
                    if valid_record is not None: valid_record.append((vl, acc))
            if record is not None: record.append(torch.cat([p.detach().flatten() for p in ps]).clone())
    return run


def fastfit(dls, **kw):
    def run(): quiet_fit(classification_learner(dls, lr=LR, **kw))
    return run


def accuracy_rows(dls):
    x, y, xv, yv = dls.train.x, dls.train.y[:, 0], dls.valid.x, dls.valid.y[:, 0]
    mean3, mean7 = x[y == 0].mean(0), x[y == 1].mean(0)
    baseline = (((xv - mean7).abs().mean(-1) < (xv - mean3).abs().mean(-1)).long() == yv).float().mean()
    bce = quiet_fit(classification_learner(dls, lr=LR))
    mn = quiet_fit(classification_learner(dls, model=LogisticModel(64, init=dict(w=torch.zeros(64), b=0.)),
                                          loss_func=mnist_loss, lr=3.))
    print(f"3 vs 7, {len(x)} training and {len(xv)} held-out digits; held-out accuracy:")
    print(f"  pixel-mean baseline (fastbook's first try)         {float(baseline):.1%}")
    print(f"  linear model, cross-entropy, lr {LR:g}, {EPOCHS} steps       {bce.validate()[1]:.1%}")
    print(f"  linear model, mnist_loss from zero, lr 3, {EPOCHS} steps  {mn.validate()[1]:.1%}")
    return bce


def fit_rows(dls, repeats):
    rec, vrec, learn = [], [], quiet_fit(classification_learner(dls, lr=LR))
    hand_loop(dls, True, rec, vrec)()
    flat = learn.param_history.flat[1:]
    diff = float((torch.stack(rec) - flat).abs().max())
    vdiff = float((torch.tensor(vrec) - torch.tensor([v[1:3] for v in learn.recorder.values])).abs().max())
    train_only = ClsDataLoaders.from_arrays(dls.train.x, dls.train.y, valid_pct=0, bs=None)  # the same 290 rows
    m = compare(dict(hand=hand_loop(dls, False), fastbook=hand_loop(dls, True), fastfit=fastfit(dls),
                     no_history=fastfit(dls, history=False), no_metric=fastfit(dls, metrics=None),
                     bare=fastfit(dls, history=False, metrics=None),
                     no_valid=fastfit(train_only, history=False, metrics=None)), repeats)
    print(f"\nfit of {EPOCHS} full-batch epochs, median of {repeats} (the hand loop's parameters after every step equal "
          f"fastfit's recorded ones to {diff:.1e}, its validation loss and accuracy every epoch fastfit's to {vdiff:.1e})")
    print(f"{'':<58}{'ms':>8}{'/ hand':>9}{'/ fastbook':>12}")
    rows = [('hand torch loop, training steps only', 'hand'),
            ("fastbook's loop: steps + validation loss, accuracy", 'fastbook'),
            ('fastfit classification_learner (history, accuracy)', 'fastfit'),
            ('fastfit, history=False', 'no_history'), ('fastfit, metrics=None', 'no_metric'),
            ('fastfit, history=False, metrics=None', 'bare'),
            ('fastfit, history=False, metrics=None, no validation set', 'no_valid')]
    for name, k in rows:
        print(f"  {name:<56}{m[k] * 1e3:8.1f}{m[k] / m['hand']:8.2f}x{m[k] / m['fastbook']:10.2f}x")


def gif_rows(learn, repeats):
    panels = ('weights', 'loss')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        learn.save_animation(d / 'warm.gif', frames=2, fps=FPS, panels=panels, dpi=DPI)  # the optimum solved once, cached
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            m = compare(dict(fastfit=lambda: learn.save_animation(d / 'ff.gif', frames=FRAMES, fps=FPS, panels=panels, dpi=DPI),
                             matplotlib=lambda: learn.animate(frames=FRAMES, fps=FPS, panels=panels, dpi=DPI).save(
                                 d / 'mpl.gif', writer=PillowWriter(fps=FPS))), repeats)
        with Image.open(d / 'ff.gif') as im: n, size = im.n_frames, im.size
        kb = (d / 'ff.gif').stat().st_size / 1e3, (d / 'mpl.gif').stat().st_size / 1e3
    print(f"\nGIF of panels {panels}, {n} frames of {size[0]}x{size[1]} px (dpi {DPI}), median of {repeats}")
    print(f"  matplotlib FuncAnimation.save(PillowWriter)  {m['matplotlib']:7.2f} s  ({kb[1]:,.0f} kB)")
    print(f"  fastfit learn.save_animation                 {m['fastfit']:7.2f} s  ({kb[0]:,.0f} kB)  "
          f"{m['matplotlib'] / m['fastfit']:.1f}x faster")


def optimum_rows():
    print("\nlearn.optimum() (Newton's method in float64), one run each")
    ten = digits(None).dataloaders(bs=None)
    for name, learn in [('3 vs 7, LogisticModel(64): 65 parameters', classification_learner(digits().dataloaders(bs=None))),
                        ('ten digits, SoftmaxModel(64, 10): 650 parameters', classification_learner(ten, model=SoftmaxModel(64, 10)))]:
        t = time.perf_counter()
        try: learn.optimum(); what = 'solved'
        except (TypeError, ValueError) as e: what = f"{type(e).__name__}: {str(e).split(':')[1].strip()[:60]}"
        print(f"  {name:<50}{time.perf_counter() - t:7.2f} s  {what}")


def main(repeats=5):
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread\n")
    dls = digits().dataloaders(bs=None)
    learn = accuracy_rows(dls)
    fit_rows(dls, repeats)
    gif_rows(learn, max(1, repeats // 2))
    optimum_rows()


if __name__ == '__main__': main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
