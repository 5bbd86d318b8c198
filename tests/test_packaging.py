"The sdist carries the license, the tests (with conftest.py), the notebooks and the README's picture; the wheel installs and runs."
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _source_copy(dest):
    "The checkout's files as git sees them (tracked, or new and not ignored), copied to `dest`."
    if shutil.which('git') is None: pytest.skip('git is needed to list the source files')
    r = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0: pytest.skip('not a git checkout')
    for f in r.stdout.splitlines():
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    return dest


def test_sdist_contents(tmp_path):
    src = _source_copy(tmp_path / 'src')
    code = "from setuptools import build_meta as b; print(b.build_sdist('dist'))"
    r = subprocess.run([sys.executable, '-c', code], cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    sdist = src / 'dist' / r.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tf:
        names = {n.split('/', 1)[1] for n in tf.getnames() if '/' in n}
        info = tf.extractfile(next(m for m in tf.getmembers() if m.name.endswith('/PKG-INFO'))).read().decode()
    for f in ('LICENSE', 'README.md', 'tests/conftest.py', 'tests/test_fastai_contract.py', 'nbs/00_quickstart.ipynb',
              'assets/demo.gif', 'fastfit/fastai_private.py', '.ci/lower_bounds.py', 'settings.ini'):
        assert f in names, f"{f} missing from the sdist"
    assert not any(n.startswith(('.venv', 'models/')) or '__pycache__' in n for n in names)
    assert 'License-Expression: Apache-2.0' in info and 'License-File: LICENSE' in info
    assert (ROOT / 'LICENSE').read_text().lstrip().startswith('Apache License\n                           Version 2.0')


def test_the_wheel_installs_into_a_fresh_environment(tmp_path):
    """The built wheel, installed into a new virtual environment, imports as `fastfit` under its distribution name and
    runs `fastfit --version`. Cheap: the dependencies are not installed again (`--no-deps`); the environment sees the
    ones this interpreter has through a .pth file (the fresh site-packages comes first, so the wheel's fastfit is found)."""
    import sysconfig
    import tomllib
    src = _source_copy(tmp_path / 'src')
    code = "from setuptools import build_meta as b; print(b.build_wheel('dist'))"
    r = subprocess.run([sys.executable, '-c', code], cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = src / 'dist' / r.stdout.strip().splitlines()[-1]
    proj = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    assert wheel.name.startswith(f"{proj['name'].replace('-', '_')}-{proj['version']}-")
    env = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env)], check=True, timeout=120)
    py = env / 'bin' / 'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'], capture_output=True,
                          text=True, check=True).stdout.strip()
    here = {sysconfig.get_path('purelib'), sysconfig.get_path('platlib')}
    (Path(site) / 'deps.pth').write_text('\n'.join(sorted(here)) + '\n')
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', str(wheel)], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1'))
    assert r.returncode == 0, r.stderr[-2000:]
    clean = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    r = subprocess.run([str(env / 'bin' / 'fastfit'), '--version'], capture_output=True, text=True, timeout=120, env=clean, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, f"fastfit {proj['version']}\n"), r.stderr
    probe = f"import fastfit, importlib.metadata as m; print(fastfit.__file__); print(m.version({proj['name']!r}))"
    r = subprocess.run([str(py), '-c', probe], capture_output=True, text=True, timeout=120, env=clean, cwd=tmp_path)
    where, version = r.stdout.split()
    assert Path(where).is_relative_to(env) and version == proj['version'], r.stderr


def test_install_commands_name_the_distribution():
    "What a user types to install names the distribution (`fastfit-gd`), never `fastfit`, another project on the index."
    import re
    import tomllib
    name = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['name']
    files = [ROOT / 'README.md', *(ROOT / 'docs' / 'pages').glob('*.md'), *(ROOT / 'fastfit').rglob('*.py')]
    wrong = [f"{f.relative_to(ROOT)}: {m[0]}" for f in files for m in re.finditer(r"(?<![./\w-])fastfit\[\w+(?:,\w+)*\]", f.read_text())]
    assert wrong == [], f"install the distribution {name}[...]: {wrong}"
    assert f"pip install '{name} @ git+" in (ROOT / 'README.md').read_text()
