"""Compile Python's bytecode for the modules named (and all they import) once, right after an install (the Makefile runs
this): pip's --no-compile skips it, and where PYTHONDONTWRITEBYTECODE is set (CI images set it) every process that
imports fastfit would otherwise compile torch, fastai and scikit-learn from source again (~11 s of CPU each).

`--tests DIR` also collects the test suite in DIR (`pytest --collect-only`): pytest then keeps the test modules it
rewrote for its assertion messages (DIR/__pycache__), which every xdist worker would otherwise rewrite again (~4 s of CPU
each). The cache is pytest's own: a test file edited later is rewritten again."""
import importlib
import sys

sys.dont_write_bytecode = False
# Nothing the suite runs imports rfc3987_syntax (tests/conftest.py says why), so its bytecode is not needed; importing it
# would build its grammars (~3 s of CPU) for nothing.
sys.modules.setdefault('rfc3987_syntax', None)
args = sys.argv[1:]
tests = None
if '--tests' in args:
    i = args.index('--tests')
    tests = args[i + 1]
    del args[i:i + 2]
for name in args:
    # Not in this environment (the oldest has no JupyterLab), or not importable without what it needs (fastai.distributed
    # without accelerate raises a NameError): nothing to compile, and not this cache's business.
    try: importlib.import_module(name)
    except Exception: pass
if tests:
    import contextlib
    import os

    import pytest
    # Quiet (the list of tests is long): what a collection error says, the suite says again when it runs.
    with open(os.devnull, 'w') as null, contextlib.redirect_stdout(null):
        pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', tests])
