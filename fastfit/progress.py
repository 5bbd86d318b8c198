"`FitProgress`: one progress bar per fit and a table of at most `max_rows` epochs, so long fits stay readable."
from __future__ import annotations

import math
import sys

import fastcore.basics
import fastprogress.fastprogress as fp
from fastai.callback.core import Callback
from fastai.learner import noop
from fastprogress.fastprogress import master_bar, progress_bar

__all__ = ['FitProgress', 'bars_wanted']


class FitProgress(Callback):
    "fastai's `ProgressCallback`, but the table shows at most `max_rows` epochs (evenly spaced, plus the last)."
    order = 60
    after_fit_on_error = True  # FitLearner runs our after_fit when an error cuts a fit short: we must tidy up
    __setattr__ = object.__setattr__  # plain sets: fastai's `Callback.__setattr__` looks each name up on the learner

    def __init__(self,
        max_rows:int=20, # at most this many epoch rows (the last epoch is always shown too)
        show_bar:bool=True, # draw the progress bar (`learn.no_bar()` turns it off, leaving the table)
    ):
        if not isinstance(max_rows, int) or max_rows < 1: raise ValueError(f"max_rows must be an int >= 1, got {max_rows!r}")
        self.max_rows, self.show_bar, self.mbar, self.pbar, self.old_logger = max_rows, show_bar, None, None, None
        self._bars = self._batch_bar = False

    @property
    def name(self): return 'progress'  # stands where fastai's ProgressCallback stands: `learn.progress`

    def before_fit(self):
        n = self.learn.n_epoch
        self.every = math.ceil(n / self.max_rows) if n > self.max_rows else 1
        self._bars = self.show_bar and self.learn.create_mbar and bars_wanted()
        # fastprogress shows its CSS once per kernel as an output of its own, before the first bar: an empty gap in the
        # notebook. Its bar and table read well unstyled (the front end styles tables), so that output is left out.
        if self._bars and getattr(fp, 'IN_NOTEBOOK', False) and hasattr(fp, '_style_shown'): fp._style_shown = True
        # Without bars, a stand-in: fastai's callbacks (ShowGraphCallback, tta) call the master bar's methods.
        self.mbar = master_bar(range(n)) if self._bars else _NoBar()
        # A bar over the batches only when an epoch has several: 10,000 one-batch epochs draw one bar, not 10,000.
        self._batch_bar = self._bars and len(self.learn.dls.train) > 1
        # Handlers with nothing to draw in this fit are hidden (instance attributes), so the dispatch, which looks them
        # up once a fit, skips them: a full-batch fit runs four per step otherwise.
        for k in _BAR_EVENTS: self.__dict__.pop(k, None)
        skip = fastcore.basics.noop  # what the dispatch leaves out
        if not self._bars: self.before_epoch = skip
        if not self._batch_bar: self.before_train = self.after_batch = self.after_train = skip
        logger = self.learn.logger
        # Our own writer still in place means a fit that never reached after_fit: wrapping it again would recurse.
        if getattr(logger, '__self__', None) is self: logger = getattr(self, '_outer_logger', print)
        self.old_logger = self._outer_logger = logger
        if self.old_logger in (noop, fastcore.basics.noop) or not hasattr(self.learn, 'recorder'): self.old_logger = None; return
        self.learn.logger = self._write_stats
        self._widths = None
        if self.every > 1: self._write(f"(one row every {self.every} epochs of {n}, and the last)")
        self._write(list(self.learn.recorder.metric_names), table=True)

    def before_epoch(self):
        if self._bars: self.mbar.update(self.learn.epoch)

    def before_train(self):
        if not self._batch_bar: return
        n = len(self.learn.dl)
        self._tick = max(1, n // 100)  # redraw about 100 times an epoch at most
        self.pbar = progress_bar(range(n), parent=self.mbar, leave=False)
        self.pbar.update(0)

    def after_batch(self):
        pb = self.pbar
        if pb is None or not self.learn.training: return
        i = self.learn.iter + 1
        if i % self._tick == 0 or i == pb.total: pb.update(i)

    def after_train(self):
        if self.pbar is not None: self.pbar.on_iter_end(); self.pbar = None

    def after_fit(self):
        if self.pbar is not None: self.pbar.on_iter_end(); self.pbar = None
        if self.mbar is not None: self.mbar.on_iter_end(); self.mbar = None
        if self.old_logger is not None: self.learn.logger, self.old_logger = self.old_logger, None

    def _write_stats(self, log):
        epoch = log[0] if len(log) and isinstance(log[0], int) else None
        if epoch is not None and epoch % self.every and epoch != self.learn.n_epoch - 1: return
        self._write([f'{v:.6f}' if isinstance(v, float) else str(v) for v in log], table=True)

    def _write(self, line, table=False):
        if self._bars: return self.mbar.write(line, table=table)
        if table:  # aligned as fastprogress aligns its console table
            if self._widths is None: self._widths = [max(len(v), 8) for v in line]
            line = '  '.join(v.ljust(w) for v, w in zip(line, self._widths)).rstrip()
        self.old_logger(line)


_BAR_EVENTS = ('before_epoch', 'before_train', 'after_batch', 'after_train')


class _NoBar:
    "What fastai's callbacks call on `learn.progress.mbar`, doing nothing: the stand-in when no bar is drawn."
    def __iter__(self): return iter(())
    def update(self, *args, **kwargs): pass
    def on_iter_end(self): pass
    def update_graph(self, *args, **kwargs): pass
    def show_imgs(self, *args, **kwargs): pass
    def write(self, *args, **kwargs): pass


def bars_wanted() -> bool:
    "Whether progress bars may be drawn: fastprogress's `NO_BAR` is off, and stdout is a terminal or a notebook."
    # fastprogress itself tests `getattr(stdout, 'isatty', False)`, the method, which is always true: a log file or a
    # CI console would fill with `\r` bars. A notebook's stdout is no tty, but its bars are widgets.
    if getattr(fp, 'NO_BAR', False): return False
    if getattr(fp, 'IN_NOTEBOOK', False): return True
    try: return sys.stdout.isatty()
    except (AttributeError, ValueError): return False
