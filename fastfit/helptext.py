"""`help()` and editors read `__doc__`; fastfit documents parameters as fastai does, by a comment after each one in the
signature (docments). `add_params_doc` copies those comments into `__doc__` as an Args section, read straight from the
source lines (cheap enough to run over every public name at import)."""
from __future__ import annotations

import inspect
import linecache
import re

__all__ = []  # not for `from fastfit.all import *`: all.py runs `add_params_docs` once

_PARAM = re.compile(r'^\s*\*{0,2}([A-Za-z_]\w*)\s*(?::[^#]*?)?(?:=[^#]*?)?,?\s*#\s?(.*\S)\s*$')


def params_doc(f) -> dict:
    "name -> comment of the parameters of `f` written one per line with a trailing comment (fastai's docments style)."
    code = getattr(inspect.unwrap(f), '__code__', None)
    if code is None: return {}
    lines = linecache.getlines(code.co_filename)
    i = code.co_firstlineno - 1
    while i < len(lines) and not lines[i].lstrip().startswith('def '): i += 1  # past decorators
    if i >= len(lines) or lines[i].rstrip().endswith(':'): return {}  # a one-line signature holds no comments
    n = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    names = set(code.co_varnames[:n]) - {'self', 'cls'}
    out = {}
    for line in lines[i + 1:]:
        if re.match(r'^\s*\)', line): break  # the line that closes the signature
        m = _PARAM.match(line)
        if m and m[1] in names: out[m[1]] = m[2]
    return out


def add_params_doc(obj):
    """Append an Args section built from the parameter comments of `obj` (a function, or a class's `__init__`) to its
    `__doc__`, once; return `obj` (usable as a decorator)."""
    target = obj.__init__ if isinstance(obj, type) else obj
    text = obj.__doc__ or ''
    if not getattr(target, '__module__', '').startswith('fastfit') or '\nArgs:\n' in text: return obj  # not ours, or done
    doc = params_doc(target)
    if not doc: return obj
    args = '\n'.join(f"    {k}: {v}" for k, v in doc.items())
    try: obj.__doc__ = f"{inspect.cleandoc(text)}\n\nArgs:\n{args}".lstrip()
    except (AttributeError, TypeError): pass  # a class whose __doc__ cannot be set
    return obj


def add_params_docs(objs):
    "`add_params_doc` on each function and class of fastfit in `objs`, and on the methods fastfit patched onto fastai's classes."
    from fastai.learner import Learner
    seen = set()
    for o in [*objs, *vars(Learner).values()]:
        if id(o) in seen or not (inspect.isfunction(o) or inspect.isclass(o)): continue
        if not getattr(o, '__module__', '').startswith('fastfit'): continue
        seen.add(id(o))
        add_params_doc(o)
        if inspect.isclass(o):
            for m in vars(o).values():
                if inspect.isfunction(m) and m.__module__.startswith('fastfit') and not m.__name__.startswith('_'): add_params_doc(m)
