"""A Griffe extension that reads fastai-style code as fastai's own docs do.

- Parameter comments (docments) become the docstring's Args section: fastfit documents parameters as fastai does, one
  per line with a trailing comment, and fastcore's `docments` reads them (with those taken over by `@delegates`).
- A function that fastcore's `@patch` adds to a class of this package becomes a method of that class (fastfit's
  `SynthData.show` is written in plots.py); one patched onto another package's class (`Learner.show_fit`) stays where
  it is written, without its `self`, and the build titles it `Learner.show_fit`.
"""
import importlib
import inspect
import linecache

from fastcore.docments import docments
from griffe import Docstring, Extension, Function, dynamic_import


def args_section(obj, names) -> str:
    "Google-style Args, Other Parameters (those `**kwargs` passes on) and Returns sections from `obj`'s docments."
    try: docs = docments(obj, full=True)
    except (TypeError, ValueError, OSError, SyntaxError): return ''  # a builtin, or source that cannot be read
    items = {k: d['docment'] for k, d in docs.items() if k not in ('self', 'cls', 'return') and d.get('docment')}
    def section(title, lines): return '\n'.join([f'{title}:', *(f'    {s}' for s in lines)]) if lines else ''
    ret = (docs.get('return') or {}).get('docment')
    sections = (section('Args', [f'{k}: {v}' for k, v in items.items() if k in names]),
                section('Other Parameters', [f'{k}: {v}' for k, v in items.items() if k not in names]),
                section('Returns', [ret] if ret else []))
    return '\n\n'.join(s for s in sections if s)


def has_comments(obj) -> bool:
    """Whether `obj` may have docments: False for a function with no `#` from its first line (decorators included) to its
    last, and none taken over by `@delegates` (`__delwrap__`). Most have none, and `docments` reads a function's source
    three times (~5 ms of CPU each); the lines here are Python's cached lines of the file."""
    code = getattr(obj, '__code__', None)
    if code is None or hasattr(obj, '__delwrap__'): return True
    last = max((n for *_, n in code.co_lines() if n is not None), default=code.co_firstlineno)
    return any('#' in line for line in linecache.getlines(code.co_filename)[code.co_firstlineno - 1:last])


def is_patch(func:Function) -> bool:
    "Whether `func` is written as fastcore's `@patch def name(self:Cls, ...)`."
    return (any(str(d.callable_path).split('.')[-1] == 'patch' for d in func.decorators)
            and len(func.parameters) > 0 and func.parameters[0].name == 'self' and func.parameters[0].annotation is not None)


class Docments(Extension):
    def __init__(self): self.patches = []  # (griffe function, live class it is patched onto)

    def on_function_instance(self, *, func:Function, **kwargs):
        # Seen as each def is visited: a later def of the same name (two `show`s for two classes) replaces the module's
        # member, so patched functions are collected here, before that.
        if func.parent.is_module and is_patch(func):
            cls = getattr(importlib.import_module(func.module.path), str(func.parameters[0].annotation), None)
            if isinstance(cls, type): self.patches.append((func, cls))

    def on_package(self, *, pkg, **kwargs):
        for func, cls in self.patches:
            if not func.path.startswith(pkg.path + '.'): continue
            module = func.parent
            if cls.__module__.split('.')[0] == pkg.name:  # a class of this package: the function becomes its method
                if module.members.get(func.name) is func: module.del_member(func.name)
                pkg[cls.__module__.removeprefix(pkg.name + '.') + '.' + cls.__qualname__].set_member(func.name, func)
            else: del func.parameters['self']
        self.patches = [p for p in self.patches if not p[0].path.startswith(pkg.path + '.')]

    def on_function(self, *, func:Function, loader, **kwargs):
        try: obj = inspect.unwrap(dynamic_import(func.path))
        except (ImportError, AttributeError): return
        if not has_comments(obj): return
        section = args_section(obj, {p.name for p in func.parameters})
        text = func.docstring.value if func.docstring else ''
        if not section or 'Args:' in text or 'Parameters:' in text: return
        if func.docstring is None:
            func.docstring = Docstring('', parent=func, parser=loader.docstring_parser, parser_options=loader.docstring_options)
        func.docstring.value = f'{text}\n\n{section}'.strip()  # set as is: Docstring() would dedent a leading section
