"""Build fastfit's documentation site (`make docs`): README.md, the guide's pages in docs/pages/, every notebook in nbs/
with its stored outputs, and an API reference of every public name of `fastfit.all` that is fastfit's own, as a static
site that loads nothing from the network. MkDocs (material theme, mkdocs-jupyter, mkdocstrings) does the rendering; this
script lays the sources out in a temporary folder first, so nothing is written into the working tree except the site.

    python docs/build_docs.py [--site site] [--readme README.md] [--nbs nbs/a.ipynb ...] [--api fastfit.all]
"""
import argparse
import importlib
import inspect
import json
import logging
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = Path(__file__).resolve().parent
# The API pages in the order data flows through the library (see STYLE.md); modules not named here follow, sorted.
ROOMS = ('data', 'models', 'learner', 'classify', 'optimum', 'progress', 'history', 'records', 'panels', 'plots', 'style',
         'render', 'compare', 'writers', 'player', 'animation', 'cli')
# The API reference's sections, by what a reader looks for; a module joins the first whose words begin its name (after
# `fastfit.`); the rest go under 'More'.
API_GROUPS = (('Data', ('data',)), ('Learners', ('learner', 'classify', 'optimum', 'history', 'progress')),
              ('Models', ('models',)), ('Pictures', ('plots', 'panels', 'records', 'style', 'render', 'glyphs', 'lines', 'live')),
              ('Comparisons', ('compare',)), ('Export', ('writers', 'player', 'gif', 'animation', 'cli')))
# The guide (docs/pages/*.md) in reading order; a page not named here follows, sorted.
GUIDE = ('install', 'conventions', 'learner', 'teaching', 'classification', 'nets', 'jupyter', 'live', 'panels', 'distributed', 'cli',
         'development')
# An element or a CSS rule that makes the browser fetch something: a script, a stylesheet, a font, an image, a frame.
LOADS = re.compile(r'''<(?P<tag>script|link|img|iframe|source|video|audio|embed|object|input)\b[^>]*?'''
                   r'''\b(?:src|href|data|srcset)\s*=\s*["']?(?P<url>(?:https?:)?//[^"'\s>]+)'''
                   r'''|(?P<css>@import\s+(?:url\()?\s*["']?|url\(\s*["']?)(?P<cssurl>(?:https?:)?//[^"')\s]+)''', re.I)
# The whole element (or CSS statement) to cut out of an output, for each kind of match above.
ELEMENT = {'script': r'<script\b[^>]*>.*?</script\s*>', 'link': r'<link\b[^>]*>', 'img': r'<img\b[^>]*>',
           'iframe': r'<iframe\b[^>]*>.*?</iframe\s*>', 'source': r'<source\b[^>]*>', 'video': r'<video\b[^>]*>.*?</video\s*>',
           'audio': r'<audio\b[^>]*>.*?</audio\s*>', 'embed': r'<embed\b[^>]*>', 'object': r'<object\b[^>]*>.*?</object\s*>',
           'input': r'<input\b[^>]*>'}
LOCAL = re.compile(r'''(?:\b(?:src|href)\s*=\s*["']|\]\()(?P<path>[^"')\s#?:]+\.[A-Za-z0-9]+)(?=["')#?\s])''')
TEXT_MIMES = ('text/html', 'image/svg+xml', 'text/markdown')
DIRECTIVE = re.compile(r'^#\|\s*([\w-]+)\s*:?(.*)$')  # nbdev's cell directives: `#| hide`, `#| echo: false`

log = logging.getLogger('docs')


class DocsError(Exception):
    "A source the site cannot be built from; the message names the file, and the cell where there is one."


def network_loads(text:str) -> list:
    "The URLs that `text` (HTML or CSS) makes a browser fetch from the network."
    return [m['url'] or m['cssurl'] for m in LOADS.finditer(text)]


def strip_network(text:str) -> tuple:
    "`text` without the elements and CSS rules that fetch from the network, and the URLs they fetched."
    urls, spans = [], []
    for m in LOADS.finditer(text):
        if not m['tag'] or (spans and m.start() < spans[-1][1]): continue  # CSS below; or inside an element already cut
        whole = re.compile(ELEMENT[m['tag'].lower()], re.I | re.S).match(text, m.start())
        spans.append((m.start(), whole.end() if whole else m.end()))
        urls.append(m['url'])
    for a, b in reversed(spans): text = text[:a] + text[b:]
    def cut(m, keep=''):
        urls.append(m['url'])
        return keep
    text = re.sub(r'''@import\s+(?:url\()?\s*["']?(?P<url>(?:https?:)?//[^"')\s;]+)[^;]*;?''', cut, text, flags=re.I)
    text = re.sub(r'''url\(\s*["']?(?P<url>(?:https?:)?//[^"')\s]+)["']?\s*\)''', lambda m: cut(m, 'none'), text, flags=re.I)
    return text, urls


def cell_name(nb_name:str, cells:list, i:int) -> str:
    "'nbs/x.ipynb, cell 3 of 9 (code: first line)': where a reader finds cell `i` (counted from 1, as they look)."
    cell = cells[i] if isinstance(cells[i], dict) else {}
    src = cell.get('source', '')
    first = (''.join(src) if isinstance(src, list) else str(src)).strip().splitlines()[:1]
    what = f"{cell.get('cell_type', 'cell')}: {first[0][:60]!r}" if first else cell.get('cell_type', 'cell')
    return f'{nb_name}, cell {i + 1} of {len(cells)} ({what})'


def read_notebook(path:Path, name:str) -> dict:
    "The notebook at `path`, checked against nbformat's schema; a `DocsError` naming the notebook and the cell if not."
    import nbformat
    try: nb = json.loads(path.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DocsError(f'{name}: not a notebook (invalid JSON: {e}); open it in Jupyter and save it again') from None
    if not isinstance(nb, dict) or not isinstance(nb.get('cells'), list):
        raise DocsError(f'{name}: not a notebook (no list of cells at the top level)')
    try: nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4), relax_add_props=True)
    except nbformat.ValidationError as e:
        path = list(getattr(e, 'absolute_path', ()))
        where = re.search(r"\['cells'\]\[(\d+)\]", str(e))  # nbformat's message names the instance it failed on
        i = int(where[1]) if where else path[1] if path[:1] == ['cells'] and len(path) > 1 else None
        at = cell_name(name, nb['cells'], i) if i is not None and i < len(nb['cells']) else name
        raise DocsError(f'{at}: cannot be converted: {e.message}') from None
    return nb


def apply_directives(cell:dict) -> dict:
    """`cell` as nbdev's docs show it: its `#|` directive lines taken out; `#| hide` (or `include: false`) shows nothing,
    `#| echo: false` (`hide_input`) only the outputs, `#| output: false` (`hide_output`) only the code."""
    if cell.get('cell_type') != 'code': return cell
    lines = (''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']).splitlines(True)
    opts = {}
    while lines and (m := DIRECTIVE.match(lines[0])):
        opts[m[1].lower()] = m[2].strip().lower()
        lines.pop(0)
    if 'hide' in opts or opts.get('include') == 'false':  # an empty raw cell: nothing shows, the next cells keep their numbers
        return {'cell_type': 'raw', 'metadata': {}, 'source': '', **({'id': cell['id']} if 'id' in cell else {})}
    cell['source'] = ''.join(lines)
    if 'hide_input' in opts or opts.get('echo') == 'false': cell['metadata'].setdefault('transient', {})['remove_source'] = True
    if 'hide_output' in opts or opts.get('output') == 'false': cell['outputs'] = []
    return cell


def clean_notebook(nb:dict, name:str) -> list:
    """Make `nb` read as a page, in place: nbdev's `#|` directives applied; outputs rendered offline, GIFs as image/png
    (which HTML exporters show), nothing loaded from the network. Returns the warnings."""
    warnings = []
    nb['cells'] = [apply_directives(c) for c in nb['cells']]
    for i, cell in enumerate(nb['cells']):
        for out in cell.get('outputs', []):
            data = out.get('data', {})
            # nbconvert's HTML shows no image/gif at all; GIF bytes sent as image/png show, and animate, everywhere.
            if 'image/gif' in data and 'image/png' not in data: data['image/png'] = data.pop('image/gif')
            if isinstance(data.get('application/javascript'), (str, list)):
                # nbconvert pastes the script into a <script> element: a "</script" in it (a player page held in a
                # string) would end that element early. In a JS string "<\/" is the same text.
                js = data['application/javascript']
                data['application/javascript'] = re.sub(r'</(script)', r'<\\/\1', ''.join(js) if isinstance(js, list) else js, flags=re.I)
            for mime in TEXT_MIMES:
                if mime not in data: continue
                text = ''.join(data[mime]) if isinstance(data[mime], list) else data[mime]
                text, urls = strip_network(text)
                if urls:
                    data[mime] = text
                    warnings.append(f"{cell_name(name, nb['cells'], i)}: removed from its {mime} output what loads "
                                    f"{', '.join(sorted(set(urls)))} (the site loads nothing from the network; re-run the cell)")
    return warnings


def copy_local_files(text:str, src_dir:Path, dst_dir:Path, root:Path) -> None:
    "Copy the files under `root` that `text` links to by a relative path (images, GIFs) from `src_dir` to `dst_dir`."
    for m in LOCAL.finditer(text):
        rel = m['path']
        src = (src_dir / rel).resolve()
        if rel.endswith(('.md', '.ipynb')) or not src.is_file() or root not in src.parents: continue
        dst = dst_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def notebook_text(nb:dict) -> str:
    "All sources and text outputs of `nb`, to look for the local files it shows."
    def s(v): return ''.join(v) if isinstance(v, list) else str(v)
    parts = [s(c.get('source', '')) for c in nb['cells']]
    parts += [s(o.get('data', {})[m]) for c in nb['cells'] for o in c.get('outputs', []) for m in TEXT_MIMES if m in o.get('data', {})]
    return '\n'.join(parts)


# -- API reference ------------------------------------------------------------------------------------------------
def own(obj, pkg:str) -> bool:
    return str(getattr(obj, '__module__', None) or '').split('.')[0] == pkg


def public_api(module:str='fastfit.all') -> dict:
    """{home module: [(name, title, identifier)]} for each public name of `module` that its package defines (in the order
    of its home module's `__all__`), then each method the package patches onto another package's class (`Learner.show_fit`)."""
    mod = importlib.import_module(module)
    pkg = module.split('.')[0]
    home = {}  # constants have no __module__: the module whose __all__ exports them is their home
    mods = [m for n, m in list(sys.modules.items()) if n.startswith(pkg + '.') and m is not None]  # (not torch's thousands)
    for name in getattr(mod, '__all__', None) or [n for n in vars(mod) if not n.startswith('_')]:
        obj = getattr(mod, name)
        where = obj.__module__ if own(obj, pkg) and hasattr(obj, '__qualname__') else next(
            (m.__name__ for m in mods if name in getattr(m, '__all__', ()) and getattr(m, name, None) is obj), None)
        if where: home[name] = where
    pages = {}
    for name, where in home.items():
        obj = getattr(mod, name)
        ident = f'{where}.{obj.__qualname__}' if hasattr(obj, '__qualname__') and own(obj, pkg) else f'{where}.{name}'
        exported = list(getattr(sys.modules[where], '__all__', ()))  # the order the module's author lists its names in
        pages.setdefault(where, []).append((exported.index(name) if name in exported else source_line(obj), name, name, ident))
    for cls in {v for v in vars(mod).values() if isinstance(v, type) and not own(v, pkg)}:
        for meth, f in vars(cls).items():
            if meth.startswith('_') or not inspect.isfunction(f) or not own(f, pkg): continue
            title = f'{cls.__name__}.{meth}'
            if last_def_line(sys.modules[f.__module__], f.__name__) != f.__code__.co_firstlineno:
                log.warning(f'{title} is not in the API reference: {f.__module__} defines another {f.__name__} after it; '
                            'give the patched function a name of its own')
                continue
            pages.setdefault(f.__module__, []).append((10**6 + source_line(f), title, title, f'{f.__module__}.{f.__name__}'))
    return {m: [e[1:] for e in sorted(entries, key=lambda e: e[0])] for m, entries in pages.items()}


def last_def_line(module, name:str) -> int|None:
    "The first line (decorators included) of the last top-level `def name` in `module`: what a reader of the source finds."
    import ast
    defs = [n for n in ast.parse(inspect.getsource(module)).body if isinstance(n, ast.FunctionDef) and n.name == name]
    return min([defs[-1].lineno] + [d.lineno for d in defs[-1].decorator_list]) if defs else None


def source_line(obj) -> int:
    try: return inspect.getsourcelines(obj)[1]
    except (TypeError, OSError): return 10**5  # constants, builtins: after the functions and classes


def undocumented(module:str='fastfit.all') -> list:
    """The public functions (classes, methods patched on or new in a class) of `module`'s package without a docstring.
    A method that overrides one of a base class (`forward`, or a fastai callback's event like `after_fit`) is not listed."""
    mod = importlib.import_module(module)
    pkg = module.split('.')[0]
    missing = []
    def check(f, name):
        if not (inspect.getdoc(f) if not isinstance(f, type) else f.__dict__.get('__doc__')): missing.append(name)
    for name in getattr(mod, '__all__', None) or [n for n in vars(mod) if not n.startswith('_')]:
        obj = getattr(mod, name)
        if not own(obj, pkg) or not callable(obj): continue
        check(obj, f'{obj.__module__}.{obj.__qualname__}')
        if not isinstance(obj, type): continue
        for meth, f in vars(obj).items():
            f = getattr(f, '__func__', f)
            overrides = any(meth in vars(b) or meth in getattr(b, '_methods', ()) for b in obj.__mro__[1:])
            if not meth.startswith('_') and inspect.isfunction(f) and not overrides: check(f, f'{obj.__module__}.{obj.__qualname__}.{meth}')
    for cls in {v for v in vars(mod).values() if isinstance(v, type) and not own(v, pkg)}:
        for meth, f in vars(cls).items():
            if not meth.startswith('_') and inspect.isfunction(f) and own(f, pkg): check(f, f'{cls.__name__}.{meth} ({f.__module__})')
    return sorted(set(missing))


def api_markdown(module:str, entries:list) -> str:
    "The page of `module`: its docstring, then each entry rendered by mkdocstrings."
    doc = inspect.getdoc(importlib.import_module(module)) or ''
    lines = [f'# {module}', '', doc.split('\n\n')[0], '']
    for _, title, ident in entries:
        lines += [f'::: {ident}', '    options:', f'      heading: "{title}"', f'      toc_label: "{title}"', '']
    return '\n'.join(lines)


# -- MkDocs hooks (mkdocs.yml loads this file as its hooks module too) -------------------------------------------------
def failing_cell(path:str, name:str) -> str:
    "Where converting the notebook at `path` fails: 'nbs/x.ipynb, cell 3 of 9 (...): the error', found cell by cell."
    from mkdocs_jupyter import convert
    nb = json.loads(Path(path).read_text(encoding='utf-8'))
    with tempfile.TemporaryDirectory() as tmp:
        for i, cell in enumerate(nb['cells']):
            one = Path(tmp) / f'cell{i}.ipynb'
            one.write_text(json.dumps({**nb, 'cells': [cell]}), encoding='utf-8')
            try: convert.nb2html(str(one))
            except Exception as e: return f'{cell_name(name, nb["cells"], i)}: cannot be converted: {type(e).__name__}: {e}'
    return f'{name}: cannot be converted'


def on_pre_page(page, config, files):
    "A notebook whose conversion fails stops the build with the notebook's name and the cell."
    if not page.file.src_uri.endswith('.ipynb') or not hasattr(page.render, '__func__'): return page
    render = page.render  # mkdocs-jupyter's, set on this page by its own on_pre_page (which runs before this hook)
    def checked(config, files):
        try: render(config, files)
        except Exception as e:
            from mkdocs.exceptions import PluginError
            raise PluginError(failing_cell(page.file.abs_src_path, page.file.src_uri)) from e
    page.render = checked
    return page


def on_page_content(html, page, config, files):
    "Drop the MathJax and Mermaid loaders mkdocs-jupyter adds to every notebook from a CDN (no notebook here uses them)."
    if not page.file.src_uri.endswith('.ipynb'): return html
    def template_loader(m): return '' if re.search(r'text/x-mathjax-config|//[^"\'\s]*(?:mathjax|mermaid)', m[0], re.I) else m[0]
    return re.sub(r'<script\b[^>]*>.*?</script\s*>', template_loader, html, flags=re.I | re.S)


def on_post_page(output, page, config):
    "The guard: a page that would load anything from the network stops the build."
    urls = network_loads(output)
    if urls:
        from mkdocs.exceptions import PluginError
        raise PluginError(f'{page.file.src_uri} would load {", ".join(sorted(set(urls)))} from the network; the site must load '
                          'nothing from it (a link is fine: <a href=...>)')
    return output


# -- the site -------------------------------------------------------------------------------------------------------
def api_group(module:str) -> str:
    "The API reference section of `module` (e.g. 'fastfit.panels.fit' is under 'Pictures')."
    name = module.split('.', 1)[-1]
    return next((g for g, words in API_GROUPS if name.split('.')[0].startswith(words)), 'More')


def heading_id(text:str) -> str:
    "The id nbconvert gives a notebook heading of `text` on a page (mkdocs-jupyter's lower-case slug)."
    from mkdocs_jupyter.utils import slugify
    from nbconvert.filters.strings import _convert_header_id
    return _convert_header_id(slugify(text))


def notebook_toc_tokens(fpath, toc_depth):
    """mkdocs-jupyter's TOC of a notebook, from its own markdown cells: its converter to markdown drops code spans from
    headings ('## Under the hood: `Records` and `Frames`' became 'Under the hood: and', linking to no heading). The ids
    are those nbconvert gives the headings on the page."""
    from mkdocs_jupyter.plugin import _get_markdown_toc
    nb = json.loads(Path(fpath).read_text(encoding='utf-8'))
    def src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    tokens = _get_markdown_toc('\n\n'.join(src(c) for c in nb['cells'] if c.get('cell_type') == 'markdown'), toc_depth)
    def fix(ts):
        for t in ts:
            t['id'] = heading_id(t['name'])
            fix(t['children'])
    fix(tokens)
    return tokens, next((t['name'] for t in tokens if t['level'] == 1), None)


def lay_out(src:Path, readme:Path, notebooks:list, api:str, pages:list|None=None) -> tuple:
    "Write the site's sources into `src`; return (nav, warnings)."
    warnings = []
    text = readme.read_text(encoding='utf-8')
    (src / 'index.md').write_text(text, encoding='utf-8')
    copy_local_files(text, readme.parent, src, ROOT)
    guide = []
    order = {p: i for i, p in enumerate(GUIDE)}
    for path in sorted(pages or [], key=lambda p: (order.get(Path(p).stem, len(order)), Path(p).stem)):
        path = Path(path).resolve()
        rel = path.relative_to(ROOT) if ROOT in path.parents else Path('docs/pages') / path.name
        page = path.read_text(encoding='utf-8')
        copy_local_files(page, path.parent, src / rel.parent, ROOT)
        # the home page is README.md in the repository and index.md on the site: the same link resolves in both
        page = re.sub(r'\]\(((?:\.\./)*)README\.md', r'](\1index.md', page)
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(page, encoding='utf-8')
        guide.append(str(rel))
    tutorials = []
    for path in notebooks:
        path = Path(path).resolve()
        name = str(path.relative_to(ROOT)) if ROOT in path.parents else path.name
        nb = read_notebook(path, name)
        warnings += clean_notebook(nb, name)
        dst = src / 'nbs' / path.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps(nb), encoding='utf-8')
        copy_local_files(notebook_text(nb), path.parent, dst.parent, ROOT if ROOT in path.parents else path.parent)
        tutorials.append(f'nbs/{path.name}')
    reference = []
    if api:
        entries = public_api(api)
        order = {m: i for i, m in enumerate(ROOMS)}
        groups = {g: [] for g, _ in API_GROUPS}
        for module in sorted(entries, key=lambda m: (order.get(m.split('.')[1], len(order)), m)):
            page = f"api/{module.split('.', 1)[-1]}.md"
            (src / 'api').mkdir(exist_ok=True)
            (src / page).write_text(api_markdown(module, entries[module]), encoding='utf-8')
            groups.setdefault(api_group(module), []).append({module: page})
        reference = [{g: ms} for g, ms in groups.items() if ms]
        warnings += [f'{name} has no docstring (a one-line docstring saying what it returns)' for name in undocumented(api)]
    (src / '_static').mkdir(exist_ok=True)
    shutil.copyfile(DOCS / 'iframe-worker-shim.js', src / '_static' / 'iframe-worker-shim.js')
    nav = ([{'Home': 'index.md'}] + ([{'Guide': guide}] if guide else []) + ([{'Tutorials': tutorials}] if tutorials else [])
           + ([{'API reference': reference}] if reference else []))
    return nav, warnings


class AltTextNews(logging.Filter):
    "nbconvert gives plots without alt text a generic one, and says so once per notebook: not news on a notebook site."
    def filter(self, record): return not record.getMessage().startswith('Alternative text is missing')


def build(site, readme=ROOT / 'README.md', notebooks=None, api:str|None='fastfit.all', pages=None) -> list:
    """Build the site into `site` from `readme`, the guide's `pages` (default: docs/pages/*.md), `notebooks` (default:
    every nbs/*.ipynb) and `api`; return the warnings."""
    import mkdocs_jupyter.plugin
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException
    mkdocs_jupyter.plugin._get_nb_toc_tokens = notebook_toc_tokens  # its own drops headings' code words (see there)
    notebooks = sorted((ROOT / 'nbs').glob('*.ipynb')) if notebooks is None else list(notebooks)
    pages = sorted((DOCS / 'pages').glob('*.md')) if pages is None else list(pages)
    traitlets = logging.getLogger('traitlets')
    if not any(isinstance(f, AltTextNews) for f in traitlets.filters): traitlets.addFilter(AltTextNews())
    site = Path(site).resolve()
    if site.is_dir() and any(site.iterdir()) and not (site / 'sitemap.xml').exists():
        raise DocsError(f'{site} is a folder of something else, not a site: the build empties its output folder; give another --site')
    with tempfile.TemporaryDirectory(prefix='fastfit-docs-') as tmp:
        nav, warnings = lay_out(Path(tmp), Path(readme).resolve(), notebooks, api, pages)
        for w in warnings: log.warning(w)
        cfg = load_config(str(DOCS / 'mkdocs.yml'), docs_dir=tmp, site_dir=str(site), nav=nav)
        try: mkdocs_build(cfg)
        except MkDocsException as e:  # mkdocs logs the hook's message, then raises "Aborted with a BuildError!" from it
            raise DocsError(str(e.__cause__ or e.__context__ or e)) from None
    return warnings


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--site', default=str(ROOT / 'site'), help='output folder (emptied first)')
    p.add_argument('--readme', default=str(ROOT / 'README.md'), help='the home page')
    p.add_argument('--nbs', nargs='*', default=None, help='notebooks (default: every nbs/*.ipynb)')
    p.add_argument('--api', default='fastfit.all', help="module whose public names the API reference shows ('' for none)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)-7s -  %(message)s')
    logging.getLogger('mkdocs').setLevel(logging.WARNING)  # its INFO lines list every page; warnings still show
    start = time.perf_counter()
    try: warnings = build(args.site, args.readme, args.nbs, args.api or None)
    except DocsError as e:
        log.error(str(e))
        return 1
    log.info(f'site built in {args.site} in {time.perf_counter() - start:.1f} s ({len(warnings)} warnings); open {args.site}/index.html')
    return 0


if __name__ == '__main__':
    sys.exit(main())
