"Export settings and destinations are checked before any drawing, with messages that name the argument and what works."
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from fastfit.all import AnimateFit, compare_optimizers, exported_frames, synth_linear


@pytest.fixture
def no_drawing(monkeypatch):
    "Drawing anything fails: the error a test expects must come before rendering (and before gigabytes of frames)."
    def draw(self, *a, **k): raise AssertionError('rendered a frame before checking the arguments')
    monkeypatch.setattr(FigureCanvasAgg, 'draw', draw)


def test_frames_must_be_a_whole_number(fitted, tmp_path, no_drawing):
    with pytest.raises(ValueError, match=r"frames must be a whole number, got 2\.7: use 3"):
        fitted.save_animation(tmp_path / 'a.gif', frames=2.7)
    with pytest.raises(TypeError, match=r"frames must be a whole number, got 'abc' of type str"):
        fitted.save_animation(tmp_path / 'a.gif', frames='abc')
    with pytest.raises(TypeError, match=r"frames must be a whole number, got '10' of type str"):
        fitted.animate(frames='10')
    with pytest.raises(ValueError, match=r"frames must be a whole number, got 2\.5: use 2"): AnimateFit(tmp_path / 'a.gif', frames=2.5)
    assert list(tmp_path.iterdir()) == []


def test_numpy_and_tensor_counts_are_accepted(fitted, tmp_path):
    for frames in (np.int64(4), torch.tensor(4), 4.0):
        p = fitted.save_animation(tmp_path / 'a.html', frames=frames, fps=np.float32(10), dpi=np.int32(30))
        assert len(exported_frames(p)) == 4
    with Image.open(fitted.save_animation(tmp_path / 'a.gif', frames=np.int16(3), dpi=30)) as im: assert im.n_frames == 3


def test_huge_dpi_refused_with_the_dpi_that_fits(fitted, tmp_path, no_drawing):
    # dpi=1000 kept every frame as 117 MB of RGBA and died of MemoryError after ~7 GB
    with pytest.raises(ValueError, match=r"dpi=1000 makes 6400x4800-pixel frames \(117 MiB each as RGBA\), more than "
                                         r"the 16\.8 million pixels .*use 10 <= dpi <= 739 for this figure \(6\.4x4\.8 inches\)"):
        fitted.save_animation(tmp_path / 'a.gif', dpi=1000)
    with pytest.raises(ValueError, match=r"dpi=600 .* use 10 <= dpi <= 473 for this figure \(15\.6x4\.8 inches\)"):
        fitted.animate(dpi=600, panels=('fit', 'surface', 'loss'))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('dpi', [0, -5, 2, 9.5])
def test_tiny_or_negative_dpi_says_what_range_works(fitted, tmp_path, no_drawing, dpi):
    # dpi <= 0 and dpi 1-3 failed deep in matplotlib/FreeType ("invalid ppem value")
    with pytest.raises(ValueError, match=rf"dpi={dpi:g} makes .*: use 10 <= dpi <= 739 for this figure"):
        fitted.save_animation(tmp_path / 'a.gif', dpi=dpi)


def test_dpi_must_be_a_number(fitted, tmp_path):
    with pytest.raises(TypeError, match=r"dpi must be a number, got '80' of type str"): fitted.save_animation(tmp_path / 'a.gif', dpi='80')


def test_gif_fps_bounded_up_front(fitted, tmp_path, no_drawing):
    # fps=0.001 made a 100,000-centisecond delay: struct.error after every frame was rendered
    with pytest.raises(ValueError, match=r"fps=0\.001 is too slow for a GIF \(a frame shows at most 655\.35 s\): use fps >= 0\.0016"):
        fitted.save_animation(tmp_path / 'a.gif', fps=0.001)
    with pytest.raises(ValueError, match=r"fps=60 is too fast for a GIF"): AnimateFit(tmp_path / 'a.gif', fps=60)
    with pytest.raises(TypeError, match=r"fps must be a number, got 'fast'"): fitted.save_animation(tmp_path / 'a.gif', fps='fast')
    with pytest.raises(ValueError, match=r"fps must be a finite number, got inf"): fitted.animate(fps=float('inf'))
    assert list(tmp_path.iterdir()) == []


def test_slowest_gif_fps_works(fitted, tmp_path):
    with Image.open(fitted.save_animation(tmp_path / 'a.gif', frames=2, fps=0.0016, dpi=20)) as im:
        assert im.info['duration'] == 625 * 1000  # 625 s a frame, within GIF's 16-bit delay


def test_missing_folder_named_before_drawing(fitted, tmp_path, no_drawing):
    # the error named a hidden temporary file, and came after every frame was rendered
    for suffix in ('gif', 'html', 'png'):
        with pytest.raises(FileNotFoundError, match=rf"cannot save '.*/no/fit\.{suffix}': the folder '.*/no' does not exist"):
            fitted.save_animation(tmp_path / 'no' / f'fit.{suffix}')
    with pytest.raises(ValueError, match=r"the folder '.*/no' does not exist; create it first"):  # also a ValueError
        AnimateFit(tmp_path / 'no' / 'fit.gif')
    assert list(tmp_path.iterdir()) == []


def _read_only_folder(tmp_path) -> Path:
    "A folder this process cannot write into (root ignores permission bits: then /sys, which refuses even root)."
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o555)
    if not os.access(ro, os.W_OK): return ro
    if Path('/sys').is_dir(): return Path('/sys')
    pytest.skip('no folder here is read-only to this process')


def test_read_only_folder_named_before_drawing(fitted, tmp_path, no_drawing):
    ro = _read_only_folder(tmp_path)
    try:
        d = re.escape(str(ro))
        with pytest.raises(PermissionError, match=rf"cannot save '{d}/fit\.gif': the folder '{d}' is not writable"):
            fitted.save_animation(ro / 'fit.gif')
        with pytest.raises(ValueError, match=r"is not writable .*save into a folder you can write to"):
            fitted.save_animation(ro / 'fit.html')
    finally:
        if ro != Path('/sys'): ro.chmod(0o755)


def test_a_folder_read_only_by_writing_time_is_named_as_before_drawing(tmp_path):
    "`write_atomic` tests writability by its own temporary file: the error `check_destination` gives, nothing written."
    from fastfit.writers import check_destination, write_atomic
    ro = _read_only_folder(tmp_path)
    try:
        with pytest.raises(PermissionError) as before: check_destination(ro / 'fit.gif')
        with pytest.raises(ValueError) as writing: write_atomic(ro / 'fit.gif', lambda tmp: Path(tmp).write_bytes(b'x'))
        assert str(writing.value) == str(before.value) and type(writing.value) is type(before.value)
        assert not (ro / 'fit.gif').exists()
    finally:
        if ro != Path('/sys'): ro.chmod(0o755)


def test_path_that_is_a_folder_named_before_drawing(fitted, tmp_path, no_drawing):
    (tmp_path / 'out.gif').mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot save to '.*/out\.gif': it is a folder; give a file name in it, "
                                                r"e\.g\. '.*/out\.gif/fit\.gif'"):
        fitted.save_animation(tmp_path / 'out.gif')
    assert [p.name for p in tmp_path.iterdir()] == ['out.gif'] and not list((tmp_path / 'out.gif').iterdir())


def test_runs_check_frames_dpi_and_destination(tmp_path):
    from fastfit.all import SGD, Adam
    c = compare_optimizers(synth_linear(n=30, seed=0).dataloaders(bs=None), [SGD, Adam], epochs=3)
    with pytest.raises(ValueError, match=r"frames must be a whole number, got 1\.5: use 2"):
        c.save_animation(tmp_path / 'c.gif', frames=1.5)
    with pytest.raises(ValueError, match=r"dpi=2000 makes .* use 10 <= dpi <= 473 for this figure \(15\.6x4\.8 inches\)"):
        c.animate(dpi=2000)
    with pytest.raises(FileNotFoundError, match=r"the folder '.*/nope' does not exist"): c.save_animation(tmp_path / 'nope' / 'c.gif')
    assert list(tmp_path.iterdir()) == []


def test_anim_save_takes_fastfits_writers(fitted, tmp_path):
    "`learn.animate().save('a.gif')`, matplotlib's spelling, writes what `save_animation` writes (fast, atomic), dpi included."
    anim = fitted.animate(frames=5, fps=10)
    assert anim.save(tmp_path / 'a.gif') == tmp_path / 'a.gif'
    fitted.save_animation(tmp_path / 'b.gif', frames=5, fps=10)
    assert (tmp_path / 'a.gif').read_bytes() == (tmp_path / 'b.gif').read_bytes()
    anim.save(tmp_path / 'small.gif', dpi=50, fps=5)
    with Image.open(tmp_path / 'small.gif') as im: assert im.size == (320, 240) and im.info['duration'] == 200
    assert anim.frames_obj.fig.dpi == 100  # the animation itself is left as it was
    with pytest.raises(ValueError, match=r'dpi=1 makes'): anim.save(tmp_path / 'c.gif', dpi=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.gif', 'b.gif', 'small.gif']


def test_anim_repr_names_methods_it_has(fitted):
    anim = fitted.animate(frames=3)
    named = re.findall(r'\.(\w+)\(', repr(anim))
    assert named == ['save'] and all(callable(getattr(anim, m, None)) for m in named)


def test_the_docs_say_what_the_html_page_holds(fitted, tmp_path):
    "docs/pages/jupyter.md's words on the .html page: an animated PNG, its size against the GIF's as an export makes it."
    text = ' '.join((Path(__file__).parents[1] / 'docs' / 'pages' / 'jupyter.md').read_text().split())
    m = re.search(r"the `\.html` page holds the same frames once, as an animated PNG \(the page about (\d\.\d)x the GIF's size", text)
    assert m, 'jupyter.md does not say the .html page holds an animated PNG'
    gif, page = (fitted.save_animation(tmp_path / f'fit.{ext}').stat().st_size for ext in ('gif', 'html'))
    assert abs(page / gif - float(m.group(1))) < 0.1, (page / gif, m.group(1))
