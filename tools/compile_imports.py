"""Compile Python's bytecode for the modules named (and all they import) once, right after an install (the Makefile runs
this): pip's --no-compile skips it, and where PYTHONDONTWRITEBYTECODE is set (CI images set it) every process that
imports fastfit would otherwise compile torch, fastai and scikit-learn from source again (~11 s of CPU each)."""
import importlib
import sys

sys.dont_write_bytecode = False
for name in sys.argv[1:]:
    # Not in this environment (the oldest has no JupyterLab), or not importable without what it needs (fastai.distributed
    # without accelerate raises a NameError): nothing to compile, and not this cache's business.
    try: importlib.import_module(name)
    except Exception: pass
