"""What each picture shows, one module per panel family: `base` (`Panel`, `PANELS`, what a panel needs, colours), `fit`,
`surface`, `loss`, `step`, `boundary` (a classifier's), `nets` ('units' and 'landscape'), `weights` (what a model
learned), `sweep` (an lr sweep's stability map), and `frames` (a figure of panels, frame by frame). A `Panel` draws one
axes: `setup(ax)` the still part, returning the artists that move, and `update(k)` moves them to frame `k` of its
`Records`."""
# isort: skip_file
# The order registers the named panels in `PANELS` in the order they are listed to users.
from . import base, fit, surface, loss, step, boundary, nets, weights, sweep, frames
from .base import *  # noqa: F403
from .fit import *  # noqa: F403
from .surface import *  # noqa: F403
from .loss import *  # noqa: F403
from .step import *  # noqa: F403
from .boundary import *  # noqa: F403
from .nets import *  # noqa: F403
from .weights import *  # noqa: F403
from .sweep import *  # noqa: F403
from .frames import *  # noqa: F403

__all__ = [n for m in (base, fit, surface, loss, step, boundary, nets, weights, sweep, frames) for n in m.__all__]
