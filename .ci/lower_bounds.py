"""Print pip pins of the oldest declared run-time dependencies: pyproject.toml's `name>=v` as `name==v` (for `make
test-oldest`). With `--extras a,b`, the requirements of those extras follow (as declared): what `pip install -e '.[a,b]'`
would add, so that the environment's dependencies install before, and apart from, the package itself."""
import argparse
import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parents[1] / 'pyproject.toml').read_text())['project']
p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
p.add_argument('--extras', default='', help='comma-separated extras whose requirements follow the pins')
args = p.parse_args()
pins = []
for d in project['dependencies']:
    m = re.fullmatch(r'\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)\s*', d)
    if m is None: sys.exit(f"lower_bounds.py: {d!r} has no plain 'name>=version' lower bound to install and test")
    pins.append(f'{m[1]}=={m[2]}')
extras = project.get('optional-dependencies', {})
for name in filter(None, args.extras.split(',')):
    if name not in extras: sys.exit(f"lower_bounds.py: no extra {name!r} in pyproject.toml; it has {', '.join(extras)}")
    for d in extras[name]:
        if d.startswith(project['name']): sys.exit(f"lower_bounds.py: extra {name!r} names the package ({d}): list its requirements")
        if any(c in d for c in ' \'";'): sys.exit(f"lower_bounds.py: {d!r} in extra {name!r} is not one word for the shell")
        pins.append(d)
print(' '.join(pins))
