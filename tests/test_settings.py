"settings.ini (nbdev 2 style) carries the same metadata as pyproject.toml, the one real source."
import configparser
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def load():
    pp = tomllib.loads((ROOT / 'pyproject.toml').read_text())
    ini = configparser.ConfigParser()
    ini.read(ROOT / 'settings.ini')
    return pp, ini['DEFAULT']


def test_metadata_agrees():
    pp, ini = load()
    proj = pp['project']
    assert ini['lib_name'] == proj['name']
    assert ini['version'] == proj['version']
    assert ini['description'] == proj['description']
    assert ini['author'] == proj['authors'][0]['name']
    assert ini['author_email'] == proj['authors'][0]['email']
    assert ini['keywords'].split() == proj['keywords']
    assert ini['min_python'] == proj['requires-python'].lstrip('>=')
    assert ini['requirements'].split() == proj['dependencies']
    assert ini['dev_requirements'].split() == proj['optional-dependencies']['dev']
    scripts = dict(s.split('=') for s in ini['console_scripts'].split())
    assert scripts == proj['scripts']


def test_nbdev_config_agrees():
    pp, ini = load()
    nb = pp['tool']['nbdev']
    for k in ('lib_path', 'nbs_path', 'doc_path', 'branch', 'tst_flags'):
        assert ini[k] == str(nb[k]), k
    for k in ('recursive', 'put_version_in_init', 'jupyter_hooks'):
        assert ini.getboolean(k) == nb[k], k


def test_version_matches_package():
    import fastfit
    pp, _ = load()
    assert fastfit.__version__ == pp['project']['version']


def test_constraints_pin_cpu_torch():
    lines = (ROOT / 'constraints.txt').read_text().split()
    assert 'torch==2.13.0' in lines and 'torchvision==0.28.0' in lines
