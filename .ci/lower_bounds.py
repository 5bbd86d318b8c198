"Print pip pins of the oldest declared run-time dependencies: pyproject.toml's `name>=v` as `name==v` (for `make test-oldest`)."
import re
import sys
import tomllib
from pathlib import Path

deps = tomllib.loads((Path(__file__).parents[1] / 'pyproject.toml').read_text())['project']['dependencies']
pins = []
for d in deps:
    m = re.fullmatch(r'\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)\s*', d)
    if m is None: sys.exit(f"lower_bounds.py: {d!r} has no plain 'name>=version' lower bound to install and test")
    pins.append(f'{m[1]}=={m[2]}')
print(' '.join(pins))
