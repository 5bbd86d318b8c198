"LiveView: the fit drawn while it runs, one output replaced in place; nothing outside a notebook; the last frame kept."
import base64
import io
import os

import numpy as np
import pytest
from PIL import Image

from fastfit.all import LiveView, regression_learner, synth_linear
from fastfit.live import LivePicture
from fastfit.records import Records
from fastfit.render import frames_differ


class Shown:
    "A stand-in for IPython's display: what a notebook output would hold after each display/update."
    def __init__(self, monkeypatch):
        import IPython.display
        self.displays, self.updates = [], []
        shown = self
        class Handle:
            def update(self, data, raw=False): shown.updates.append(data)
        def display(data, raw=False, display_id=None, **kw):
            shown.displays.append((data, display_id))
            return Handle()
        monkeypatch.setattr(IPython.display, 'display', display)

    @property
    def last(self) -> dict: return (self.updates or [self.displays[-1][0]])[-1]


def png_pixels(b64:str) -> np.ndarray: return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert('RGB'))


def learner(init=None):
    from fastfit.all import LinearModel
    return regression_learner(synth_linear(n=60, seed=0).dataloaders(bs=None, valid_pct=0), model=LinearModel(init=init))


def quiet_fit(learn, n, cbs=None):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, cbs=cbs)


def test_outside_a_notebook_it_draws_nothing_and_leaves_the_fit_alone(monkeypatch):
    shown = Shown(monkeypatch)
    a, b = learner(), learner()
    live = LiveView()
    quiet_fit(a, 30, live); quiet_fit(b, 30)
    assert shown.displays == [] and live.updates == 0 and live.pic is None
    assert live.run_train is False  # fastai's dispatch skips its per-step event: no cost per step
    assert np.array_equal(a.param_history.flat.numpy(), b.param_history.flat.numpy())


def test_one_output_updated_in_place_ending_on_the_last_step(monkeypatch):
    shown = Shown(monkeypatch)
    learn = learner(init={'w': 2., 'b': 1.})  # a start inside the data's range: the fit panel's y range is the end's too
    live = LiveView(panels=('fit', 'loss'), show=True, max_fps=1e9, share=1.)  # unthrottled: every step drawn
    quiet_fit(learn, 25, live)
    assert len(shown.displays) == 1 and shown.displays[0][1] is True  # one output, with a display id
    assert live.updates == 1 + len(shown.updates) and live.updates >= 25  # the start, every step, then the end
    assert live.shown_step == learn.param_history.step == 25
    assert shown.last['text/plain'] == '<LiveView: step 25 of 25>'
    # the last picture is matplotlib's full draw of the last step, made afresh (the still part was drawn at the start,
    # and every update renewed what the panels draw from)
    img = png_pixels(shown.last['image/png'])
    assert img.shape == (480, 1040, 3)
    assert frames_differ(img, full_draw(learn, ('fit', 'loss'))) < 1e-3


def full_draw(learn, panels) -> np.ndarray:
    "The last record drawn from scratch by matplotlib, the loss axis spanning the steps taken."
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from fastfit.all import Frames, LossPanel
    fr = Frames(learn, Records.from_history(learn.param_history, 1), panels=panels)
    for p, ax in zip(fr.panels, fr.axs):
        if isinstance(p, LossPanel): ax.set_xlim(0, learn.param_history.step)
    fr.fig.tight_layout()  # as the live view lays out its figure once the loss axis spans the fit
    fr.draw(0)
    canvas = FigureCanvasAgg(fr.fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def test_throttled_by_time(monkeypatch):
    "At most max_fps updates a second: a slow-drawing fast fit is drawn a few times, its start and its end included."
    shown = Shown(monkeypatch)
    learn = learner()
    live = LiveView(panels=('fit',), show=True, max_fps=1e-3)
    quiet_fit(learn, 200, live)
    assert live.updates == 2 and len(shown.updates) == 1  # the start (step 0), then the last step
    assert live.shown_step == 200 and shown.last['text/plain'].startswith('<LiveView: step 200 ')


def test_the_last_frame_stays_after_an_error(monkeypatch):
    from fastai.callback.core import Callback
    class Boom(Callback):
        order = 70
        def after_step(self):
            if self.learn.param_history.step == 12: raise RuntimeError('boom')
    shown = Shown(monkeypatch)
    learn = learner()
    live = LiveView(panels=('fit', 'surface', 'loss'), show=True, max_fps=1e-3)
    with pytest.raises(RuntimeError, match='boom'): quiet_fit(learn, 100, [live, Boom()])
    assert live.shown_step == learn.param_history.step == 12
    assert '<LiveView: step 12 of 100>' == shown.last['text/plain']
    assert live.pic is None  # tidied up: the figure let go


def test_the_last_frame_stays_after_an_interrupt(monkeypatch):
    from fastai.callback.core import Callback
    class CtrlC(Callback):
        order = 70
        def after_step(self):
            if self.learn.param_history.step == 7: raise KeyboardInterrupt
    shown = Shown(monkeypatch)
    learn = learner()
    live = LiveView(show=True, max_fps=1e-3)
    with pytest.raises(KeyboardInterrupt): quiet_fit(learn, 50, [live, CtrlC()])
    assert live.shown_step == 7 and shown.last['text/plain'] == '<LiveView: step 7 of 50>'
    quiet_fit(learn, 5, LiveView(show=True))  # the learner fits again, live
    assert learn.param_history.step == 12


def test_custom_panels_and_no_history(monkeypatch):
    "Any panel set, a custom Panel included; without a history the model as it is is drawn."
    from fastfit.all import COLORS, Panel
    class Dot(Panel):
        def setup(self, ax):
            ax.set_xlim(0, 100); ax.set_ylim(0, 10)
            self.dot, = ax.plot([0], [0], 'o', c=COLORS['fit'])
            return [self.dot]
        def update(self, k):
            self.dot.set_data([self.step(k) or 0], [self.loss(k)])
    shown = Shown(monkeypatch)
    learn = learner()
    live = LiveView(panels=('fit', Dot), show=True, max_fps=1e9, share=1.)
    quiet_fit(learn, 10, live)
    assert live.updates >= 10 and live.pic is None
    plain = regression_learner(synth_linear(n=60, seed=0).dataloaders(bs=None, valid_pct=0), history=False)
    live = LiveView(panels=('fit',), show=True, max_fps=1e9, share=1.)
    quiet_fit(plain, 5, live)
    assert live.updates >= 5 and shown.last['text/plain'].startswith('<LiveView: step None')


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='max_fps'): LiveView(max_fps=0)
    with pytest.raises(ValueError, match='share'): LiveView(share=2)
    learn = learner()
    with pytest.raises(ValueError, match='unknown panels'): quiet_fit(learn, 3, LiveView(panels=('nope',), show=True))
    assert learn.param_history.step == 0  # refused before any step


def test_live_picture_redraws_a_state_given_now():
    "The picture for new records: the still part kept, only the moving artists follow (as a full draw would show)."
    learn = learner()
    quiet_fit(learn, 40)
    h = learn.param_history
    pic = LivePicture(learn, Records.from_history(h, 1), panels=('fit', 'surface', 'loss'), dpi=50)
    first = pic.draw().copy()
    early = Records([{k: v[3] for k, v in h.params.items()}], [h.steps[3]], [h.losses[3].item()])
    img = pic.draw(early).copy()
    assert frames_differ(first, img) > 1e-3
    # the same state from a fresh picture (a full set-up) gives the same pixels
    fresh = LivePicture(learn, early, panels=('fit', 'surface', 'loss'), dpi=50).draw()
    assert frames_differ(img, fresh) < 1e-3


def test_a_live_fit_caption_follows_new_records():
    "The fit panel's captions, made once for the records drawn, are made again for the next records given."
    learn = learner()
    quiet_fit(learn, 40)
    h = learn.param_history
    pic = LivePicture(learn, Records.from_history(h, 1), panels=('fit',), dpi=50)
    pic.draw()
    first = pic.fr.panels[0].text.get_text()
    pic.draw(Records([{k: v[3] for k, v in h.params.items()}], [h.steps[3]], [h.losses[3].item()]))
    fit = pic.fr.panels[0]
    assert fit.text.get_text() == fit._caption(0) != first and 'step 3' in fit.text.get_text()


# -- in a real Jupyter kernel ----------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def kernel(tmp_path_factory):
    "A real Jupyter kernel (ipykernel) that counts the in-place updates of each display."
    pytest.importorskip('ipykernel', reason="ipykernel is missing: pip install -e '.[dev]'")
    from nbclient import NotebookClient
    from nbformat.v4 import new_notebook
    from traitlets.config import Config
    folder = tmp_path_factory.mktemp('kernel')
    class Counting(NotebookClient):
        updates = 0
        def _update_display_id(self, display_id, msg):
            type(self).updates += 1
            return super()._update_display_id(display_id, msg)
    local = Config({'KernelManager': {'transport': 'ipc', 'ip': str(folder / 'k')}})
    client = Counting(new_notebook(), kernel_name='python3', config=local, timeout=120, allow_errors=True,
                      resources={'metadata': {'path': str(folder)}})
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'} | {
        'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([root, os.environ.get('PYTHONPATH', '')])}
    km = client.setup_kernel(env=env)
    km.__enter__()
    def run(src):
        from nbformat.v4 import new_code_cell
        cell = new_code_cell(src)
        client.nb.cells.append(cell)
        before = Counting.updates
        client.execute_cell(cell, len(client.nb.cells) - 1)
        return cell.outputs, Counting.updates - before
    run("from fastfit.all import *\nimport fastprogress.fastprogress as fp\nfp.NO_BAR = True\n"
        "dls = synth_linear(n=60, seed=0).dataloaders(bs=None, valid_pct=0)")
    yield run
    km.__exit__(None, None, None)


def test_in_a_kernel_one_output_is_updated(kernel):
    outs, updates = kernel("learn = regression_learner(dls)\nlive = LiveView(panels=('fit', 'loss'), max_fps=1e9, share=1.)\n"
                           "learn.fit(30, cbs=live)\nprint(live.updates, live.shown_step)")
    images = [o for o in outs if o.output_type == 'display_data' and 'image/png' in o.data]
    assert len(images) == 1  # one output, replaced in place: never a second picture
    # what the cell printed: stdout may come in several stream messages, and stderr (a warning) after it
    printed = ''.join(o.text for o in outs if o.output_type == 'stream' and o.name == 'stdout').split()
    assert len(printed) >= 2, [(o.output_type, o.get('name'), o.get('text')) for o in outs]
    n, step = int(printed[-2]), int(printed[-1])
    assert step == 30 and n >= 30 and updates == n  # every message of that display id (the first, then n - 1 updates)
    assert images[0].data['text/plain'] == '<LiveView: step 30 of 30>'


def test_in_a_kernel_the_last_frame_stays_after_an_exception(kernel):
    outs, updates = kernel(
        "class Boom(Callback):\n    order = 70\n"
        "    def after_step(self):\n        if self.learn.param_history.step == 9: raise ValueError('boom')\n"
        "learn = regression_learner(dls)\nlive = LiveView(max_fps=1e-3)\nlearn.fit(40, cbs=[live, Boom()])")
    images = [o for o in outs if o.output_type == 'display_data' and 'image/png' in o.data]
    errors = [o for o in outs if o.output_type == 'error']
    assert len(images) == 1 and errors and errors[0].ename == 'ValueError'
    assert images[0].data['text/plain'] == '<LiveView: step 9 of 40>' and updates == 2  # the start, then step 9
    assert png_pixels(images[0].data['image/png']).shape[1] == 1040  # two panels at dpi 100


def test_in_a_kernel_with_the_progress_bar(kernel):
    "The progress bar and the live picture are two outputs, each updated in place."
    outs, _ = kernel("import fastprogress.fastprogress as fp\nfp.NO_BAR = False\nlearn = regression_learner(dls)\n"
                     "learn.fit(20, cbs=LiveView(panels=('fit',)))\nfp.NO_BAR = True")
    images = [o for o in outs if o.output_type == 'display_data' and 'image/png' in o.data]
    bars = [o for o in outs if o.output_type == 'display_data' and 'progress' in o.data.get('text/html', '')]
    assert len(images) == 1 and len(bars) >= 1
    assert images[0].data['text/plain'] == '<LiveView: step 20 of 20>'


def test_replay_puts_the_player_over_the_whole_run_in_place(monkeypatch):
    "replay=True: when the fit ends, the live output becomes the animation's GIF and the player's script follows it."
    shown = Shown(monkeypatch)
    learn = learner()
    quiet_fit(learn, 20, LiveView(panels=('fit', 'loss'), show=True, replay=True, frames=8))
    gif = base64.b64decode(shown.updates[-1]['image/png'])
    assert gif[:4] == b'GIF8' and Image.open(io.BytesIO(gif)).n_frames == 8
    assert len(shown.displays) == 2 and 'fastfitPlayer' in shown.displays[1][0]['application/javascript']
