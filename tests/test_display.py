"""What a notebook shows: an animation's outputs (the GIF as image/png, then the player's script; the last frame with a
note above the size limit; matplotlib's HTML when `animation.html` asks), every `show_*`/`plot_*` as one picture with
no stray repr, and the shipped notebooks' stored outputs (offline, small, in the current layout)."""
import base64
import importlib.util
import inspect
import io
import json
import os
import re
import warnings
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pytest
from PIL import Image

import fastfit.all as A
from fastfit.player import last_frame_png

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_LIMIT = 1_500_000  # bytes a notebook in nbs/ may take (README): a few GIFs at the default dpi (100, readable) and figures


@pytest.fixture(scope='module')
def learn():
    learn = A.regression_learner(A.synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(30)
    return learn


def gif_of_output(data) -> Image.Image:
    raw = base64.b64decode(data['image/png'])
    assert raw[:6] == b'GIF89a', 'the image/png output holds the GIF'
    return Image.open(io.BytesIO(raw))


def test_outputs_are_the_gif_then_the_player_script(learn):
    anim = learn.animate(frames=6, fps=5, dpi=40)
    img, js = anim.outputs()
    assert set(img) == {'image/png', 'text/plain'} and set(js) == {'application/javascript', 'text/plain'}
    im = gif_of_output(img)
    assert im.n_frames == 6 and im.size == (256, 192) and im.info['duration'] == 200
    assert js['text/plain'] == ''  # all an untrusted front end shows of the script: nothing
    script = js['application/javascript']
    assert 'fastfitPlayer' in script and 'FF_COUNTS = "[1, 1, 1, 1, 1, 1]"' in script and 'FF_FPS = "5"' in script
    assert 'base64' not in script and len(script) < 20_000  # the frames are in the notebook once, in the image above
    assert '</script' not in script.lower() and 'http:' not in script and 'https:' not in script
    assert img['text/plain'].startswith('<FitAnimation: 6 frames at 5 fps, an animated GIF of ')


def test_runs_animate_shows_the_same_layout():
    dls = A.synth_linear(n=30, seed=1).dataloaders(bs=None, valid_pct=0)
    sweep = A.lr_sweep(dls, (.01, .1), epochs=5)
    img, js = sweep.animate(frames=4, dpi=30).outputs()
    assert gif_of_output(img).n_frames == 4 and 'fastfitPlayer' in js['application/javascript']


def test_over_the_size_limit_the_last_frame_shows_with_a_note(learn):
    anim = learn.animate(frames=6, fps=5, dpi=40)
    with mpl.rc_context({'animation.embed_limit': .001}):  # about 1 kB
        img, note = anim.outputs()
    raw = base64.b64decode(img['image/png'])
    assert raw[:8] == b'\x89PNG\r\n\x1a\n' and raw == last_frame_png(anim.frames_obj)
    assert set(note) == {'text/plain'} and '\n' not in note['text/plain']
    msg = note['text/plain']
    assert msg.startswith('Showing the last frame:') and "animation.embed_limit of 0.001 MB" in msg
    assert 'frames=' in msg and 'dpi=' in msg and "save_animation('fit.gif')" in msg


def test_animation_html_jshtml_gives_matplotlibs_own(learn):
    anim = learn.animate(frames=3, dpi=30)
    with mpl.rc_context({'animation.html': 'jshtml'}): (out,) = anim.outputs()
    assert set(out) == {'text/html', 'text/plain'}
    assert 'new Animation(' in out['text/html'] and out['text/html'].count('data:image/png;base64,') == 3


def test_animation_html_html5_gives_a_video(learn):
    pytest.importorskip('imageio_ffmpeg', reason="html5 here needs the mp4 extra's ffmpeg: pip install -e '.[mp4]'")
    anim = learn.animate(frames=3, dpi=30)
    with mpl.rc_context({'animation.html': 'html5'}): (out,) = anim.outputs()
    assert out['text/html'].startswith('<video') and 'data:video/mp4;base64,' in out['text/html']


def test_animation_html_html5_without_ffmpeg_warns_and_shows_the_player(learn, monkeypatch):
    import sys

    from matplotlib.animation import writers
    monkeypatch.setattr(writers, 'is_available', lambda name: False)
    monkeypatch.setitem(sys.modules, 'imageio_ffmpeg', None)  # import fails: the extra is not installed
    anim = learn.animate(frames=3, dpi=30)
    hint = r"needs the movie writer 'ffmpeg'.*fastfit-gd\[mp4\]"
    with mpl.rc_context({'animation.html': 'html5'}), pytest.warns(UserWarning, match=hint):
        img, js = anim.outputs()
    assert gif_of_output(img).n_frames == 3 and 'fastfitPlayer' in js['application/javascript']


def test_repr_in_a_terminal(learn):
    anim = learn.animate(frames=4, fps=8, dpi=30)
    assert repr(anim) == ("<FitAnimation: 4 frames at 8 fps; shows in a notebook, .save('fit.gif') writes a file "
                          "(.gif, .html, .mp4 or .png)>")


def test_a_script_that_prints_an_animation_gets_no_warning(tmp_path):
    "In a script, `anim = learn.animate(); print(anim)` ends quietly: no matplotlib 'deleted without rendering' warning."
    import subprocess
    import sys
    code = ("from fastfit.all import *\n"
            "learn = regression_learner(synth_linear(n=20).dataloaders(bs=None))\n"
            "with learn.no_bar(), learn.no_logging(): learn.fit(10)\n"
            "anim = learn.animate(frames=3, dpi=30)\nprint(anim)\n"
            "learn.animate(frames=2, dpi=30)\n")  # one dropped unshown too
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND='Agg', PYTHONWARNINGS='default')
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # frames=3 of a 10-step fit: 3 frames (a 3-step fit would show all its 4 records)
    assert r.stdout.startswith('<FitAnimation: 3 frames') and 'Animation was deleted' not in r.stderr, r.stderr


# -- in a real kernel: what a cell's last line shows -------------------------------------------------------------------
class Kernel:
    "A real Jupyter kernel (ipykernel, the inline backend, as Jupyter runs a notebook): `run(src)` gives a cell's outputs."
    def __init__(self, folder):
        from nbclient import NotebookClient
        from nbformat.v4 import new_notebook
        from traitlets.config import Config
        local = Config({'KernelManager': {'transport': 'ipc', 'ip': str(folder / 'k')}})  # sockets, no TCP port
        self.client = NotebookClient(new_notebook(), kernel_name='python3', config=local, timeout=120, allow_errors=True,
                                     resources={'metadata': {'path': str(folder)}})
        # the kernel's own backend (inline), not the Agg the suite runs under; one maths thread on a shared machine
        env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'} | {'OMP_NUM_THREADS': '1'}
        self._kernel = self.client.setup_kernel(env=env)
        self._kernel.__enter__()

    def run(self, src:str) -> list:
        from nbformat.v4 import new_code_cell
        cell = new_code_cell(src)
        self.client.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        return cell.outputs

    def close(self): self._kernel.__exit__(None, None, None)


@pytest.fixture(scope='module')
def shell(tmp_path_factory):
    "A kernel holding one object of each kind drawn."
    pytest.importorskip('ipykernel', reason="ipykernel is missing: pip install -e '.[dev]'")
    k = Kernel(tmp_path_factory.mktemp('kernel'))
    setup = ["from fastfit.all import *",
             "s = synth_linear(n=40, seed=0)\ndls = s.dataloaders(bs=None)\nlearn = regression_learner(dls)\n"
             "with learn.no_bar(), learn.no_logging(): learn.fit(20)",
             "multi = synth_multilinear(n=40)",
             "cmp = compare_optimizers(dls, {'SGD': SGD, 'Adam': Adam}, epochs=5)",
             "sweep = lr_sweep(dls, (.01, .1), epochs=5)",
             "blobs = synth_blobs(n=60, centers=3)\ncls_dls = blobs.dataloaders(bs=None)\n"
             "clf = classification_learner(cls_dls)\nwith clf.no_bar(), clf.no_logging(): clf.fit(5)",
             "digs = digits()\nimg = classification_learner(digs.dataloaders(bs=None))\n"
             "with img.no_bar(), img.no_logging(): img.fit(3)"]
    try:
        for src in setup:
            outs = k.run(src)
            assert not [o for o in outs if o['output_type'] == 'error'], outs
        yield k
    finally: k.close()


# The objects a drawing method is called on, by name in the shell: a method of a class is called on each that is one.
# A helper adding a kind of object (a classification learner, say) adds it here; a method with no object fails below.
CANDIDATES = ('learn', 's', 'multi', 'dls', 'cmp', 'sweep', 'blobs', 'cls_dls', 'clf', 'digs', 'img')
# Functions need their arguments.
FUNCTION_ARGS = {'show_xy': 's.x, s.y', 'show_dls': 'dls', 'show_classes': 'blobs.x, blobs.y'}


def drawing_methods() -> list:
    "(class or None, name) of every `show*`/`plot_*` fastfit defines: on its own classes, patched onto fastai's, or a function."
    def draws(name): return name == 'show' or name.startswith(('show_', 'plot_'))
    def ours(f): return inspect.isfunction(f) and f.__module__.startswith('fastfit')
    found = {(cls, n) for cls in {v for v in vars(A).values() if isinstance(v, type)}
             for n, f in vars(cls).items() if draws(n) and ours(f)}
    found |= {(None, n) for n, f in vars(A).items() if draws(n) and ours(f)}
    return sorted(found, key=lambda m: (m[0].__name__ if m[0] else '', m[1]))


def test_every_drawing_method_is_found():
    names = {f"{c.__name__}.{n}" if c else n for c, n in drawing_methods()}
    assert {'Learner.show_fit', 'Learner.plot_params', 'Learner.plot_loss_surface', 'FitLearner.show_results',
            'SynthData.show', 'RegDataLoaders.show', 'RegDataLoaders.show_batch', 'Runs.show', 'show_xy'} <= names, names


def one_picture(outputs) -> bool:
    return [o['output_type'] for o in outputs] == ['display_data'] and 'image/png' in outputs[0]['data']


@pytest.mark.parametrize('cls, name', drawing_methods(), ids=lambda v: v if isinstance(v, str) else getattr(v, '__name__', 'function'))
def test_a_drawing_method_last_in_a_cell_shows_one_picture(shell, cls, name):
    if cls is None:
        assert name in FUNCTION_ARGS, f"{name}: add its arguments to FUNCTION_ARGS so that this test calls it"
        calls = [f"{name}({FUNCTION_ARGS[name]})"]
    else:
        cls_name = f"{cls.__module__}.{cls.__qualname__}"
        (out,) = shell.run(f"import {cls.__module__}, json\n"
                           f"print(json.dumps([c for c in {list(CANDIDATES)!r} if isinstance(eval(c), {cls_name})]))")
        calls = [f"{c}.{name}()" for c in json.loads(out['text'])]
        assert calls, f"{cls.__name__}.{name}: no object of class {cls.__name__} in CANDIDATES; add one to the shell fixture"
    drawn = []
    for call in calls:
        outs = shell.run(call)
        errors = [o for o in outs if o['output_type'] == 'error']
        if errors:  # a method for other models may refuse this one, with a clear error
            assert errors[0]['ename'] in ('TypeError', 'ValueError'), (call, errors[0])
            continue
        assert one_picture(outs), f"{call} as a cell's last line shows {[(o['output_type'], list(o.get('data', {}))) for o in outs]}"
        if not drawn:  # and once a method with the habitual semicolon (what it hides is the cell's value, the same for all)
            assert one_picture(shell.run(call + ';')), call + ';'
        drawn.append(call)
    assert drawn, f"{calls} all raised: add an object this method draws to CANDIDATES"


def test_animate_last_in_a_cell_shows_the_two_outputs(shell):
    outs = shell.run("learn.animate(frames=4, dpi=30)")
    assert [o['output_type'] for o in outs] == ['display_data', 'display_data']  # no execute_result, no figure
    assert gif_of_output(outs[0]['data']).n_frames == 4 and outs[1]['data']['text/plain'] == ''
    assert 'fastfitPlayer' in outs[1]['data']['application/javascript']
    outs = shell.run("cmp.animate(frames=3, dpi=30)")
    assert [o['output_type'] for o in outs] == ['display_data', 'display_data']


# -- the shipped notebooks ---------------------------------------------------------------------------------------------
NOTEBOOKS = sorted((ROOT / 'nbs').glob('*.ipynb'))


def _load_build_docs():
    spec = importlib.util.spec_from_file_location('fastfit_build_docs_display', ROOT / 'docs' / 'build_docs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def outputs_of(path):
    nb = json.loads(path.read_text(encoding='utf-8'))
    for i, cell in enumerate(nb['cells']):
        for j, out in enumerate(cell.get('outputs', [])):
            yield f"{path.name}, cell {i + 1}, output {j + 1}", cell, j, {k: ''.join(v) if isinstance(v, list) else v
                                                                           for k, v in out.get('data', {}).items()}


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_load_nothing_from_the_network(path):
    bd = _load_build_docs()
    for where, _, _, data in outputs_of(path):
        for mime in ('text/html', 'image/svg+xml', 'text/markdown'):
            if mime in data: assert bd.network_loads(data[mime]) == [], f"{where}: its {mime} loads {bd.network_loads(data[mime])}"
        js = data.get('application/javascript', '')
        assert 'http:' not in js and 'https:' not in js and 'import(' not in js, f"{where}: a script that may fetch from the network"


# An absolute path of the machine that ran the notebook: a home, a checkout, a temporary folder, an environment's packages.
MACHINE_PATH = re.compile(r'(?:/(?:home|Users|work|root|tmp|private|opt|usr/lib)/[^\s\'"]+|[A-Za-z]:\\\\?Users\\|site-packages)')


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_carry_no_machine_paths(path):
    "What a notebook stores is read on other machines: no path of the one that ran it (a warning's file, a temp folder)."
    nb = json.loads(path.read_text(encoding='utf-8'))
    for i, cell in enumerate(nb['cells']):
        for j, out in enumerate(cell.get('outputs', [])):
            data = out.get('data', {})
            texts = [out.get('text', ''), out.get('traceback', [])]
            texts += [data[m] for m in ('text/plain', 'text/html', 'text/markdown') if m in data]
            text = '\n'.join(''.join(t) if isinstance(t, list) else t for t in texts)
            m = MACHINE_PATH.search(text)
            assert m is None, f"{path.name}, cell {i + 1}, output {j + 1} stores a path of this machine: {m[0]!r}"


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_files_stay_small(path):
    size = path.stat().st_size
    assert size <= NOTEBOOK_LIMIT, (f"{path.name} is {size:,} bytes, over the {NOTEBOOK_LIMIT:,} a notebook may take: fewer "
                                    "frames or a lower dpi in its animations and pictures, then `make nbs`")


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_animations_are_in_the_current_layout(path):
    "Every animation a notebook stores is the GIF (as image/png) followed by the player's script; no stale players."
    for where, cell, j, data in outputs_of(path):
        assert 'text/html' not in data or ('<iframe' not in data['text/html'] and 'Animation(' not in data['text/html']), \
            f"{where}: an animation in an old layout; run `make nbs`"
        assert 'image/gif' not in data, f"{where}: image/gif, which nbconvert's HTML does not show; display the animation instead"
        if 'image/png' in data and base64.b64decode(data['image/png'][:8])[:4] == b'GIF8':
            nxt = cell['outputs'][j + 1].get('data', {}) if j + 1 < len(cell['outputs']) else {}
            assert 'fastfitPlayer' in ''.join(nxt.get('application/javascript', '')), f"{where}: a GIF without the player's script after it"


def test_the_notebook_tool_runs_a_notebook_in_place(tmp_path):
    """tools/run_notebooks.py executes a notebook with a real kernel and writes its outputs back, its metadata kept; a
    file the notebook rewrites beside it (a GIF it shows by path) comes back, a new one (an export) does not."""
    pytest.importorskip('nbclient'); pytest.importorskip('ipykernel')
    spec = importlib.util.spec_from_file_location('run_notebooks', ROOT / 'tools' / 'run_notebooks.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    meta = {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}, 'language_info': {'name': 'python'}}
    (tmp_path / 'shown.gif').write_text('old')
    nb = new_notebook(cells=[new_code_cell("print(sorted({'b', 'a'}))"),
                             new_code_cell("open('shown.gif', 'w').write('new'); open('export.pkl', 'w').write('x')")], metadata=meta)
    path = tmp_path / 'x.ipynb'
    nbformat.write(nb, path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert tool.main([str(path)]) == 0
    back = nbformat.read(path, as_version=4)
    assert back.cells[0].outputs[0]['text'] == "['a', 'b']\n" and back.cells[0].execution_count == 1
    assert back.metadata == meta and 'execution' not in back.cells[0].metadata
    assert (tmp_path / 'shown.gif').read_text() == 'new' and not (tmp_path / 'export.pkl').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['shown.gif', 'x.ipynb']
    bad = new_notebook(cells=[new_code_cell("1 / 0")], metadata=meta)
    nbformat.write(bad, tmp_path / 'bad.ipynb')
    before = (tmp_path / 'bad.ipynb').read_text()
    assert tool.main([str(tmp_path / 'bad.ipynb')]) == 1 and (tmp_path / 'bad.ipynb').read_text() == before
    assert tool.main([str(tmp_path / 'missing.ipynb')]) == 2


def test_last_frame_png_is_the_last_frame(learn):
    anim = learn.animate(frames=5, dpi=30)
    png = np.asarray(Image.open(io.BytesIO(last_frame_png(anim.frames_obj))).convert('RGB'))
    gif = gif_of_output(anim.outputs()[0])
    gif.seek(gif.n_frames - 1)
    assert png.shape == np.asarray(gif.convert('RGB')).shape


@pytest.fixture(scope='module')
def objects(learn):
    "One object of each kind drawn, in this process (for the argument checks)."
    dls = A.synth_linear(n=30, seed=1).dataloaders(bs=None)
    return dict(learn=learn, s=A.synth_linear(n=30, seed=1), multi=A.synth_multilinear(n=30), dls=dls,
                cmp=A.compare_optimizers(dls, {'SGD': A.SGD}, epochs=3), sweep=A.lr_sweep(dls, (.1,), epochs=3),
                digs=A.digits())


@pytest.mark.parametrize('cls, name', [(c, n) for c, n in drawing_methods() if c is not None],
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_drawing_into_something_that_is_not_axes_is_refused(objects, cls, name):
    "Every `ax=`, `axs=` or `fig=` a drawing method takes refuses what is not one, naming the argument."
    params = [p for p in inspect.signature(getattr(cls, name)).parameters if p in ('ax', 'axs', 'fig')]
    obj = next((o for o in objects.values() if isinstance(o, cls)), None)
    assert obj is not None, f"{cls.__name__}: add an object of it to the `objects` fixture"
    assert params, f"{cls.__name__}.{name} takes none of ax=, axs=, fig=: a picture must be drawable into the user's axes"
    for p in params:
        with pytest.raises(TypeError, match=rf"{p} must (be a|hold) matplotlib (Axes|Figure).*got str"):
            getattr(obj, name)(**{p: 'left'})
