"""The frames of issue 22's defects 2, 3, 4 and 7 as PNGs at the default dpi, for the before/after comparison in
docs/pictures/: a diverging run (2), the 'step' panel of Adam (3), the 'landscape' beside the loss (4), and runs and
classes in colour (7).

    python tools/pictures.py docs/pictures/after      # writes d2_diverging.png, d2_sweep.png, ... there
"""
import sys
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import torch  # noqa: E402

from fastfit.all import (  # noqa: E402
    SGD,
    Adam,
    LinearModel,
    MLPModel,
    Records,
    RMSProp,
    classification_learner,
    compare_batch_sizes,
    compare_optimizers,
    lr_sweep,
    regression_learner,
    synth_blobs,
    synth_func,
    synth_linear,
)
from fastfit.panels import Frames  # noqa: E402


def quiet(learn, n):
    with learn.no_bar(), learn.no_logging(): learn.fit(n)
    return learn


def save(fig, out):
    "`fig` as a PNG of at most 256 colours at its own dpi (a third of the bytes, the same picture to the eye)."
    import io

    from PIL import Image
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    Image.open(buf).convert('RGB').quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def frame(learn, panels, k, frames=100, out=None):
    "Frame `k` of the animation of `learn` (default dpi, `frames` frames), saved to `out`."
    fr = Frames(learn, Records.from_history(learn.param_history, frames), panels=panels)
    fr.draw(k if k >= 0 else len(fr) + k)
    save(fr.fig, out)


def main(folder):
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    dls = synth_linear(n=100, seed=42).dataloaders(bs=None)
    # 2: a run at lr 1.05 grows away from the optimum; lr_sweep's diverged panel
    div = quiet(regression_learner(dls, lr=1.05), 30)
    frame(div, ('fit', 'surface', 'loss'), 12, 31, out / 'd2_diverging_step12.png')
    frame(div, ('fit', 'surface', 'loss'), -1, 31, out / 'd2_diverging_end.png')
    sw = lr_sweep(dls, (.01, .1, .9, 1.5), epochs=60)
    sw.show()
    import matplotlib.pyplot as plt
    save(plt.gcf(), out / 'd2_sweep.png'); plt.close('all')
    # 3: the 'step' panel of Adam, at the default dpi
    adam = quiet(regression_learner(dls, LinearModel(init=dict(w=[-0.1382643], b=0.49671415)), opt_func=Adam, lr=.1), 10)
    frame(adam, ('fit', 'step'), 3, 11, out / 'd3_step_adam.png')
    # 4: the landscape at step 0 beside the loss
    sine = synth_func(torch.sin, n=200, x_range=(-3, 3), noise=.1, seed=42).dataloaders(bs=None, valid_pct=0)
    net = quiet(regression_learner(sine, model=MLPModel(hidden=(16,)), lr=.1), 1000)
    frame(net, ('landscape', 'loss'), 0, 21, out / 'd4_landscape_step0.png')
    from fastfit.all import LandscapePanel
    frame(net, (partial(LandscapePanel, directions='random'), 'loss'), -1, 21, out / 'd4_landscape_random.png')
    # 7: several runs in colour; classes
    cmp = compare_optimizers(dls, [SGD, RMSProp, Adam], lr={'SGD': .1, 'RMSProp': .03, 'Adam': .05}, epochs=80)
    cmp.show(); save(plt.gcf(), out / 'd7_optimizers.png'); plt.close('all')
    bs = compare_batch_sizes(dls, bss=(1, 16, None), epochs=10, lr=.1)
    bs.show(); save(plt.gcf(), out / 'd7_batch_sizes.png'); plt.close('all')
    two = quiet(classification_learner(synth_blobs(n=200, centers=2, spread=1.2, seed=42).dataloaders(bs=None), lr=1.), 100)
    frame(two, ('boundary',), 5, 21, out / 'd7_boundary_two.png')
    five = quiet(classification_learner(synth_blobs(n=300, centers=5, spread=1., seed=42).dataloaders(bs=None), lr=.5), 100)
    frame(five, ('boundary',), -1, 21, out / 'd7_boundary_five.png')
    print('\n'.join(sorted(str(p) for p in out.glob('*.png'))))


if __name__ == '__main__': main(sys.argv[1] if len(sys.argv) > 1 else 'docs/pictures/after')
