"""Files: the .gif, .html (the player), .mp4 and .png of a `Frames`, each written atomically after its destination and
settings are checked (before any drawing)."""
from __future__ import annotations

import io
import math
import os
import tempfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from PIL import Image

from .gif import HOLD_LAST, apng_frames, check_gif_fps, gif_of
from .player import frames_page, last_frame_png, page_image
from .render import Renderer

__all__ = ['exported_frames']


def check_number(name, value, integer=False):
    """`value` as an int (`integer`) or float, or an error naming `name`: numbers and numpy/0-d torch scalars are
    accepted; strings, bools, non-integral counts and NaN/inf are refused."""
    what = 'a whole number' if integer else 'a number'
    v = value.item() if hasattr(value, 'item') and getattr(value, 'ndim', None) == 0 else value
    if isinstance(v, bool) or not isinstance(v, Real):
        raise TypeError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}")
    if not math.isfinite(v): raise ValueError(f"{name} must be a finite number, got {value!r}")
    if integer:
        if not isinstance(v, Integral) and v != round(v):
            raise ValueError(f"{name} must be a whole number, got {value!r}: use {max(1, round(v))}")
        return int(v)
    return float(v)


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


# Errors about the destination are ValueErrors (a bad argument) and also the OSError a write there would raise.
_PATH_ERRORS = {e: type(e.__name__, (e, ValueError), {'__module__': __name__})
                for e in (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)}


def check_destination(path) -> Path:
    "`path` if a file can be written there, else an error naming the folder (missing, not writable) or the folder it is."
    path = _placeable(path)
    try:  # the one sure test of writability (permissions, read-only file systems, root's rights)
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix='.tmp', dir=path.parent)
        os.close(fd); os.unlink(tmp)
    except OSError as e: raise _not_writable(path, e) from None
    return path


def _placeable(path) -> Path:
    "`path` unless it is a folder or its folder is missing (or a file): `check_destination` less the writability test."
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise _PATH_ERRORS[IsADirectoryError](f"cannot save to {str(path)!r}: it is a folder; give a file name in it, "
                                              f"e.g. {str(path / ('fit' + (path.suffix or '.gif')))!r}")
    if not folder.exists():
        raise _PATH_ERRORS[FileNotFoundError](f"cannot save {str(path)!r}: the folder {str(folder)!r} does not exist; "
                                              f"create it first (Path({str(folder)!r}).mkdir(parents=True)) or save elsewhere")
    if not folder.is_dir():
        raise _PATH_ERRORS[NotADirectoryError](f"cannot save {str(path)!r}: {str(folder)!r} is a file, not a folder")
    return path


def _not_writable(path:Path, e:OSError) -> Exception:
    return _PATH_ERRORS[PermissionError](f"cannot save {str(path)!r}: the folder {str(path.parent)!r} is not writable "
                                         f"({e.strerror}); save into a folder you can write to")


def write_atomic(path, write):
    """Call `write(tmp_path)` on a temporary file beside `path`, then rename it to `path`: never a half-written file,
    no temporary file left on failure, and the permissions a new file gets (an existing file keeps its own)."""
    path = _placeable(path)
    # its temporary file is the writability test (`check_destination` makes and removes one more: ~0.5 ms of CPU)
    try: fd, tmp = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix=f'.tmp{path.suffix}', dir=path.parent)
    except OSError as e: raise _not_writable(path, e) from None
    os.close(fd)
    try:
        write(tmp)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_gif(fr, path, fps):
    gif, _ = gif_of(fr, fps)
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(gif))


def _write_html(fr, path, fps):
    page = frames_page(fr, fps, Path(path).name)
    return write_atomic(path, lambda tmp: Path(tmp).write_text(page, encoding='utf-8'))


def _write_png(fr, path, fps):
    "The last frame, drawn in full by matplotlib."
    png = last_frame_png(fr)
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(png))


_FFMPEG_MISSING = ("saving {name!r} as .mp4 needs the optional extra fastfit-gd[mp4] (imageio-ffmpeg, whose wheel ships "
                   "ffmpeg): pip install 'fastfit-gd[mp4]'; or save .gif or .html, which need nothing more")


def _imageio_ffmpeg(name):
    try:
        import imageio_ffmpeg
    except ImportError as e: raise ImportError(_FFMPEG_MISSING.format(name=str(name))) from e
    return imageio_ffmpeg


def _write_mp4(fr, path, fps):
    iio = _imageio_ffmpeg(path)
    def write(tmp):
        with Renderer(fr) as r:
            h, w = r.frame(0).shape[:2]
            ph, pw = h + h % 2, w + w % 2  # H.264 in yuv420p needs even sizes: pad by repeating the last row/column
            wr = iio.write_frames(tmp, (pw, ph), fps=fps, codec='libx264', pix_fmt_in='rgb24', pix_fmt_out='yuv420p',
                                  quality=8, macro_block_size=1, ffmpeg_log_level='error', output_params=['-f', 'mp4'])
            wr.send(None)
            try:
                for k in range(len(fr)):
                    f = r.frame(k)[..., :3]
                    wr.send(np.ascontiguousarray(np.pad(f, ((0, ph - h), (0, pw - w), (0, 0)), mode='edge')))
            finally: wr.close()
    return write_atomic(path, write)


WRITERS = {'.gif': _write_gif, '.html': _write_html, '.mp4': _write_mp4, '.png': _write_png}


def check_fps(fps, suffix=None) -> float:
    """`fps` as a float, or an error saying what works: one rule for every writer and the notebook display (`suffix` no
    longer matters), 0.0016 to 50, the range whose GIF frame delays browsers play as written."""
    fps = check_number('fps', fps)
    if not fps > 0: raise ValueError(f"fps must be > 0, got {fps!r}")
    check_gif_fps(fps)
    return fps


def check_export(fname, fps) -> callable:
    """The writer for `fname` at `fps`, or a clear error before any drawing: an unknown suffix, the mp4 extra missing,
    a bad fps, a destination that cannot be written (a missing or read-only folder, a folder's own path)."""
    suffix = Path(fname).suffix.lower()
    if suffix not in WRITERS:
        raise ValueError(f"unknown file suffix {suffix!r} in {str(fname)!r}: use one of {', '.join(WRITERS)}")
    if suffix == '.mp4': _imageio_ffmpeg(fname)
    check_fps(fps, suffix)
    check_destination(fname)
    return WRITERS[suffix]


def export(fr, fname, fps:float=20) -> Path:
    "Write the frames of `fr` (a `Frames`) to `fname` (.gif, .html, .mp4 or .png, atomically) and return its path."
    return check_export(fname, fps)(fr, Path(fname), check_fps(fps))


def exported_frames(fname, fps:float|None=None) -> list:
    """The RGB frames of an exported .gif or .html (its APNG), one per animation frame: an image frame that stands for
    several (Pillow and fastfit merge repeats) is repeated `duration*fps` times (.gif, given `fps`; the last frame's hold
    left out) or as the page says (.html)."""
    path = Path(fname)
    counts = None
    if path.suffix.lower() == '.html':
        image, counts = page_image(path.read_text(encoding='utf-8'))
        if image.startswith(b'\x89PNG'): return [f for (f, _), n in zip(apng_frames(image), counts) for _ in range(n)]
        src = io.BytesIO(image)  # a page from before pages held an APNG: its GIF
    else: src = path
    out = []
    with Image.open(src) as im:
        last = getattr(im, 'n_frames', 1) - 1
        for i in range(last + 1):
            im.seek(i)
            ms = im.info['duration'] - (10 * HOLD_LAST if i == last else 0)  # the image holds its last frame longer
            n = counts[i] if counts else 1 if fps is None else round(ms * fps / 1000)
            out += [np.asarray(im.convert('RGB'))] * n
    return out
