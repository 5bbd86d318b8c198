"Everything a notebook needs: `from fastfit.all import *` (fastfit and fastai.basics, like fastai.vision.all)."
from fastai.basics import *  # noqa: F403

from .classify import *  # noqa: F403
from .compare import *  # noqa: F403
from .data import *  # noqa: F403
from .hand import *  # noqa: F403
from .helptext import add_params_docs as _add_params_docs
from .history import *  # noqa: F403
from .learner import *  # noqa: F403
from .live import *  # noqa: F403
from .models import *  # noqa: F403
from .panels import *  # noqa: F403
from .player import *  # noqa: F403
from .plots import *  # noqa: F403
from .records import *  # noqa: F403
from .style import *  # noqa: F403
from .writers import *  # noqa: F403

_add_params_docs(list(globals().values()))  # help(regression_learner) lists the parameter comments too
