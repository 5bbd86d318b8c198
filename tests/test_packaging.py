"The sdist carries the license, the tests (with conftest.py), the notebooks and the README's picture; the wheel the license."
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
