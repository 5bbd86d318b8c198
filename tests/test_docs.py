"""The documentation site (`make docs`), built from README + two notebooks into a temporary folder and opened page by page
in Debian's headless Chromium with every network request blocked: no console error, animations show, code is
highlighted, search works from file://; and the build's answers to bad input."""
import base64
import importlib.util
import io
import json
import logging
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip('mkdocs', reason="the docs extra is missing: pip install -e '.[docs]'")
pytest.importorskip('mkdocs_jupyter', reason="the docs extra is missing: pip install -e '.[docs]'")
pytest.importorskip('mkdocstrings', reason="the docs extra is missing: pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ('file:', 'data:', 'blob:', 'about:')


def _load_build():
    spec = importlib.util.spec_from_file_location('fastfit_build_docs', ROOT / 'docs' / 'build_docs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bd = _load_build()


# -- the notebooks the site is built from ------------------------------------------------------------------------
def notebook(cells) -> dict:
    import nbformat.v4 as v4
    nb = v4.new_notebook(cells=cells, metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
                                                'language_info': {'name': 'python'}})
    return json.loads(json.dumps(nb))  # plain dicts, as read from a file


def md(src):
    import nbformat.v4 as v4
    return v4.new_markdown_cell(src)


def code(src, outputs=()):
    import nbformat.v4 as v4
    return v4.new_code_cell(src, outputs=list(outputs))


def display_data(data) -> dict:
    return {'output_type': 'display_data', 'metadata': {}, 'data': data}


@pytest.fixture(scope='module')
def fit():
    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(30)
    return learn


@pytest.fixture(scope='module')
def sources(tmp_path_factory, fit):
    """Two notebooks: one holding the outputs `learn.animate()` stores (the GIF as image/png, then the script that mounts
    the player on it), and a script output with "</script>" in a string; one executed here with what it shows today."""
    tmp = tmp_path_factory.mktemp('nbs')
    layout = notebook([
        md('# Two outputs\n\nThe GIF where outputs are sanitised, the player where scripts run.'),
        md('## Under the hood: `Records` and `Frames`\n\nA heading with code words: the table of contents keeps them.'),
        code('learn.animate(frames=5, fps=10, dpi=40)', [display_data(d) for d in fit.animate(frames=5, fps=10, dpi=40).outputs()]),
        code('Javascript(...)', [display_data({'application/javascript': 'element.textContent = "a </script> inside a string";',
                                               'text/plain': ''})]),
        code('def f(x):\n    "A docstring."\n    return x + 1  # highlighted'),
        code('#| hide\nhidden_setup = 42'),
        code('#| echo: false\nprint("only the output shows")',
             [{'output_type': 'stream', 'name': 'stdout', 'text': 'only the output shows\n'}])])
    (tmp / 'layout.ipynb').write_text(json.dumps(layout))

    from execnb.shell import CaptureShell
    srcs = ['from fastfit.all import *',
            'learn = regression_learner(synth_linear(n=50, seed=0).dataloaders(bs=None, valid_pct=0))\n'
            'with learn.no_bar(), learn.no_logging(): learn.fit(30)',
            'learn.animate(frames=5, fps=10, dpi=40)']
    shell = CaptureShell()
    # execnb formats a cell's value once more after running it: an object that displays itself (`_ipython_display_`)
    # gets an execute_result with no data, which a kernel never sends; dropped, as it shows nothing
    def shown(outs): return [o for o in outs if o['output_type'] != 'execute_result' or o['data']]
    try: cells = [code(s, shown(shell.run(s))) for s in srcs]
    finally: shell.close()
    assert not [o for c in cells for o in c['outputs'] if o['output_type'] == 'error'], cells
    (tmp / 'executed.ipynb').write_text(json.dumps(notebook([md('# Executed here\n\n`learn.animate()` as it shows today.'), *cells])))
    return tmp


@pytest.fixture(scope='module')
def site(tmp_path_factory, sources):
    out = tmp_path_factory.mktemp('site') / 'site'
    warnings = bd.build(out, notebooks=[sources / 'layout.ipynb', sources / 'executed.ipynb'])
    return out, warnings


# -- the browser (conftest's `browser`) ------------------------------------------------------------------------------
# Requests that would leave the machine: only these are routed through Python (the site's own files load untouched).
REMOTE = re.compile('^(?!(' + '|'.join(s.rstrip(':') for s in LOCAL) + '):)')


class Opened:
    """A page opened offline: every request that would leave the machine is blocked and kept, with every console error.
    `visit` opens another file in the same tab, starting both lists afresh."""
    def __init__(self, browser, path, js=True):
        self.ctx = browser.new_context(viewport={'width': 1200, 'height': 900}, java_script_enabled=js)
        self.ctx.route(REMOTE, self._route)
        self.page = self.ctx.new_page()
        self.page.on('console', lambda m: m.type == 'error' and self.errors.append(m.text))
        self.page.on('pageerror', lambda e: self.errors.append(str(e)))
        self.visit(path)

    def visit(self, path):
        self.blocked, self.errors = [], []
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state('load')
        return self

    def _route(self, route):
        self.blocked.append(route.request.url)
        route.abort()

    def close(self): self.ctx.close()


def pages(site_dir) -> list:
    "The site's pages, but 404.html: a web server's page, linked from the server's root, never opened from the files."
    return sorted(p for p in site_dir.rglob('*.html') if p.name != '404.html')


def gif_frames(src:str) -> int:
    "Frames of the GIF in a data: URI (0 when it is not a GIF)."
    data = base64.b64decode(src.split(',', 1)[1])
    return Image.open(io.BytesIO(data)).n_frames if data[:4] == b'GIF8' else 0


def check_animations(pg) -> int:
    """Every animation on the page shows: an animated GIF is visible, or hidden only where a fastfit player stands in the
    same cell; every player paints its first frame and plays. Returns how many were found."""
    imgs = pg.evaluate("""() => [...document.querySelectorAll('img')]
        .filter(i => i.src.startsWith('data:image/') && !i.closest('.ff-player'))
        .map(i => ({src: i.src, visible: i.naturalWidth > 0 && i.getBoundingClientRect().width > 0 && i.checkVisibility(),
                    player: !!(i.closest('.jp-Cell') || document).querySelector('.ff-player canvas')}))""")
    found = 0
    for im in imgs:
        if gif_frames(im['src']) < 2: continue
        found += 1
        assert im['visible'] or im['player'], 'an animated GIF is hidden and no player stands in its place'
    for player in pg.locator('.ff-player').all():
        found += 1
        canvas = player.locator('.ff-canvas')
        assert canvas.is_visible() and canvas.bounding_box()['width'] > 100, 'the player is not visible'
        assert player.locator('.ff-gif').is_hidden()
        label = player.locator('.ff-label').text_content()
        player.locator('.ff-play').click()
        player.locator('.ff-label').filter(has_not_text=label).wait_for(timeout=20_000)  # it plays: the frame advances
        player.locator('.ff-play').click()
    return found


# -- the tests -------------------------------------------------------------------------------------------------------
def test_site_has_every_page(site):
    out, _ = site
    rel = {str(p.relative_to(out)) for p in pages(out)}
    assert {'index.html', 'nbs/layout.html', 'nbs/executed.html', 'api/data.html', 'api/learner.html'} <= rel, rel
    assert '<h1' in (out / 'index.html').read_text() and 'make docs' in (out / 'index.html').read_text()
    layout = (out / 'nbs' / 'layout.html').read_text()
    assert 'hidden_setup' not in layout and 'print(' not in layout and 'only the output shows' in layout  # nbdev's #| hide, echo


def test_every_page_loads_offline_without_console_errors(site, browser):
    out, _ = site
    every = pages(out)
    o = Opened(browser, every[0])
    try:
        for i, path in enumerate(every):  # one tab, page after page (a tab per page costs more than the page)
            if i: o.visit(path)
            o.page.wait_for_timeout(300)  # errors a page's scripts raise once loaded
            assert o.blocked == [], f'{path.name} asks the network for {o.blocked}'
            assert o.errors == [], f'{path.name}: {o.errors}'
            assert o.page.locator('article h1').first.is_visible(), f'{path.name} shows no heading'
    finally: o.close()


def test_the_offline_check_catches_a_request_for_the_network(tmp_path, browser):
    "What the page tests rely on: a page that fetches from the web is caught (and its own files are not)."
    (tmp_path / 'a.css').write_text('body { color: #333 }')
    page = tmp_path / 'p.html'
    page.write_text('<link rel="stylesheet" href="a.css"><h1>p</h1><img src="https://example.invalid/x.png">')
    o = Opened(browser, page)
    try: assert o.blocked == ['https://example.invalid/x.png']
    finally: o.close()


def test_animations_play_where_scripts_run(site, browser):
    out, _ = site
    o = Opened(browser, out / 'nbs' / 'layout.html')
    try:
        assert check_animations(o.page) == 2  # the GIF (hidden), and the player mounted in its place
        assert not o.page.locator('.jp-RenderedImage img').first.is_visible()
        assert o.page.get_by_text('a </script> inside a string').is_visible()  # the build kept the script whole
        assert o.errors == [] and o.blocked == []
    finally: o.close()
    o = Opened(browser, out / 'nbs' / 'executed.html')
    try:
        assert check_animations(o.page) >= 1  # whatever `learn.animate()` shows today, it shows here
        assert o.errors == [] and o.blocked == []
    finally: o.close()


def test_the_gif_shows_where_scripts_do_not_run(site, browser):
    out, _ = site
    o = Opened(browser, out / 'nbs' / 'layout.html', js=False)
    try:
        img = o.page.locator('.jp-RenderedImage img').first
        assert img.is_visible() and img.bounding_box()['width'] > 100
        assert gif_frames(img.get_attribute('src')) == 5 and check_animations(o.page) == 1
    finally: o.close()


def test_code_is_highlighted(site, browser):
    out, _ = site
    for rel, sel in (('nbs/layout.html', '.highlight-ipynb .k'), ('index.html', '.highlight .kn')):
        o = Opened(browser, out / rel)
        try:
            kw = o.page.locator(sel).first
            assert kw.is_visible(), f'{rel}: no highlighted keyword ({sel})'
            colour = kw.evaluate('e => getComputedStyle(e).color')
            plain = kw.evaluate("e => getComputedStyle(e.closest('pre') || e.parentElement).color")
            assert colour != plain, f'{rel}: keywords are drawn like plain text ({colour})'
        finally: o.close()


def _search(o, word) -> list:
    "The links the site's search box lists for `word`, typed into the page `o` has open."
    o.page.click('input.md-search__input')
    # material says "Initializing search" until its worker (an iframe here: no workers on file://) has the index
    o.page.wait_for_function("document.querySelector('.md-search-result__meta').textContent.trim() === 'Type to start searching'",
                             timeout=20000)
    o.page.keyboard.type(word)
    o.page.wait_for_selector('.md-search-result__item', timeout=10000)
    return o.page.locator('.md-search-result__item a').evaluate_all('els => els.map(e => e.href)')


def test_search_works_from_the_file_system(site, browser):
    out, _ = site
    o = Opened(browser, out / 'index.html')
    try:
        hits = _search(o, 'regression_learner')
        assert any('api/learner.html' in h for h in hits), hits
        assert o.errors == [] and o.blocked == []
    finally: o.close()


def test_search_finds_code_words_by_their_parts(site, browser):
    "`embed_limit` is found inside `animation.embed_limit` (material's default separator kept the dotted name whole)."
    out, _ = site
    o = Opened(browser, out / 'index.html')
    try:
        hits = _search(o, 'embed_limit')
        assert any('docs/pages/jupyter.html' in h for h in hits), hits
    finally: o.close()


def test_table_of_contents_links_resolve_and_keep_code_words(site):
    "Every entry of a page's table of contents links to a heading on that page; headings' code words stay in it."
    out, _ = site
    for page in pages(out):
        html = page.read_text()
        toc = html[html.find('md-nav--secondary'):]
        toc = toc[:toc.find('</nav>')] if 'md-nav--secondary' in html else ''
        ids = set(re.findall(r'\bid="([^"]+)"', html))
        missing = [a for a in re.findall(r'href="#([^"]+)"', toc) if a not in ids]
        assert missing == [], f"{page.relative_to(out)}: its table of contents links to {missing}, which are not on the page"
    layout = (out / 'nbs' / 'layout.html').read_text()
    toc = layout[layout.find('md-nav--secondary'):]
    assert re.search(r'Under the hood: Records and Frames\s*</span>', toc) or 'Under the hood: Records and Frames' in toc
    assert 'href="#under-the-hood-records-and-frames"' in toc


def test_the_guide_and_the_api_reference_are_grouped_by_task(site):
    out, _ = site
    html = (out / 'index.html').read_text()
    labels = re.findall(r'<span class="md-ellipsis">\s*([^<]+?)\s*</span>', html)
    for group in ('Guide', 'Tutorials', 'API reference', 'Data', 'Learners', 'Models', 'Pictures', 'Comparisons', 'Export'):
        assert group in labels, (group, labels)
    for page in ('install', 'conventions', 'cli'): assert (out / 'docs' / 'pages' / f'{page}.html').is_file()
    # the README's links to the guide resolve on the site (its home page) as they do in the repository
    assert 'href="docs/pages/install.html"' in html
    assert not [p for p in re.findall(r'href="([^"#:]+\.md)"', html)], 'a link to a .md file the site did not convert'


def test_api_reference_shows_every_public_name_with_its_docments(site):
    from fastcore.docments import docments

    import fastfit.all as A
    out, _ = site
    html = '\n'.join(p.read_text() for p in (out / 'api').glob('*.html'))
    own = [n for n, v in vars(A).items() if not n.startswith('_') and str(getattr(v, '__module__', '')).startswith('fastfit')]
    assert len(own) > 20
    missing = [n for n in own if f'id="{A.__dict__[n].__module__}.{n}"' not in html]
    assert missing == [], missing
    assert 'id="fastfit.plots.show_fit"' in html and 'Learner.show_fit' in html  # a method fastfit patches onto fastai's Learner
    learner = (out / 'api' / 'learner.html').read_text()
    for name, doc in docments(A.regression_learner).items():
        if doc and name != 'return': assert doc.replace('`', '').split()[0] in learner, (name, doc)
    assert '<td><code>lr</code></td>' in learner.replace('\n', '') or 'learning rate' in learner


def test_stale_network_outputs_are_stripped_with_a_warning(tmp_path):
    nb = notebook([code('anim', [{'output_type': 'display_data', 'metadata': {}, 'data': {
        'text/html': '<link rel="stylesheet" href="https://cdn.example/fa.css">\n<div class="animation">frames</div>',
        'text/plain': '<anim>'}}])])
    warnings = bd.clean_notebook(nb, 'nbs/stale.ipynb')
    assert len(warnings) == 1 and 'nbs/stale.ipynb, cell 1 of 1' in warnings[0] and 'https://cdn.example/fa.css' in warnings[0]
    html = nb['cells'][0]['outputs'][0]['data']['text/html']
    assert 'cdn.example' not in html and '<div class="animation">frames</div>' in html
    assert bd.network_loads('<img src="//x.example/a.png"><a href="https://x.example">a link</a>') == ['//x.example/a.png']


@pytest.mark.parametrize('broken, where', [
    (lambda nb: nb['cells'][1].pop('source'), 'cell 2 of 3 (code)'),
    (lambda nb: nb['cells'][2]['outputs'].append({'output_type': 'stream', 'name': 'stdout'}), "cell 3 of 3 (code: 'print(1)')"),
])
def test_a_notebook_that_cannot_be_converted_stops_the_build(tmp_path, broken, where):
    nb = notebook([md('# Broken'), code('x = 1'), code('print(1)')])
    broken(nb)
    (tmp_path / 'broken.ipynb').write_text(json.dumps(nb))
    with pytest.raises(bd.DocsError, match='broken.ipynb') as e:
        bd.build(tmp_path / 'site', notebooks=[tmp_path / 'broken.ipynb'], api=None)
    assert where in str(e.value), str(e.value)
    assert not (tmp_path / 'site').exists()


def test_invalid_json_names_the_notebook(tmp_path):
    (tmp_path / 'conflict.ipynb').write_text('{"cells": [\n<<<<<<< HEAD\n')
    with pytest.raises(bd.DocsError, match=r'conflict.ipynb: not a notebook \(invalid JSON: .*line 2'):
        bd.build(tmp_path / 'site', notebooks=[tmp_path / 'conflict.ipynb'], api=None)


def test_a_conversion_failure_names_the_cell(tmp_path, monkeypatch):
    "A notebook that is valid but fails in the converter: the build finds the cell, converting one cell at a time."
    from mkdocs_jupyter import convert
    real = convert.nb2html
    def fussy(path, **kw):
        if 'CRASH' in Path(path).read_text(): raise RuntimeError('the converter gave up')
        return real(path, **kw)
    monkeypatch.setattr(convert, 'nb2html', fussy)
    (tmp_path / 'odd.ipynb').write_text(json.dumps(notebook([md('# Odd'), code('x = 1'), code('y = "CRASH"')])))
    with pytest.raises(bd.DocsError) as e: bd.build(tmp_path / 'site', notebooks=[tmp_path / 'odd.ipynb'], api=None)
    assert 'odd.ipynb, cell 3 of 3 (code: \'y = "CRASH"\')' in str(e.value) and 'the converter gave up' in str(e.value)


def test_a_public_function_without_docstring_is_a_warning(tmp_path, monkeypatch, caplog):
    pkg = tmp_path / 'src' / 'toyfit'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text('"A toy package."\n')
    (pkg / 'core.py').write_text('"The core of toyfit."\n__all__ = ["documented", "bare", "Thing"]\n\n'
                                 'def documented(x):\n    "Return `x`."\n    return x\n\n'
                                 'def bare(x):\n    return x\n\n'
                                 'class Thing:\n    "A thing."\n    def shown(self):\n        "Shown."\n\n    def hidden(self): pass\n')
    (pkg / 'all.py').write_text('from os.path import join  # noqa: F401\n\nfrom .core import *  # noqa: F403\n')
    monkeypatch.syspath_prepend(str(tmp_path / 'src'))
    monkeypatch.chdir(tmp_path / 'src')  # mkdocstrings finds the package from the working folder too
    for m in [m for m in sys.modules if m.startswith('toyfit')]: monkeypatch.delitem(sys.modules, m)
    (tmp_path / 'README.md').write_text('# toyfit\n\nA toy.\n')
    with caplog.at_level(logging.WARNING, logger='docs'):
        warnings = bd.build(tmp_path / 'site', readme=tmp_path / 'README.md', notebooks=[], api='toyfit.all')
    assert [w.split()[0] for w in warnings] == ['toyfit.core.Thing.hidden', 'toyfit.core.bare'], warnings
    assert 'toyfit.core.bare has no docstring' in caplog.text
    page = (tmp_path / 'site' / 'api' / 'core.html').read_text()
    assert 'id="toyfit.core.documented"' in page and 'id="toyfit.core.bare"' in page and 'join' not in page


def test_gif_outputs_render_as_images():
    "nbconvert's HTML shows no image/gif output at all: the build hands the same bytes over as image/png, which animate."
    gif = base64.b64encode(b'GIF89a...').decode()
    nb = notebook([code('show()', [{'output_type': 'display_data', 'metadata': {}, 'data': {'image/gif': gif, 'text/plain': '<gif>'}}])])
    assert bd.clean_notebook(nb, 'g.ipynb') == []
    assert nb['cells'][0]['outputs'][0]['data'] == {'image/png': gif, 'text/plain': '<gif>'}


def test_the_build_never_empties_a_folder_that_is_not_a_site(tmp_path):
    (tmp_path / 'work.py').write_text('precious = 1\n')
    with pytest.raises(bd.DocsError, match='not a site'): bd.build(tmp_path, notebooks=[], api=None)
    assert (tmp_path / 'work.py').read_text() == 'precious = 1\n'


def test_nbdev_directives_shape_the_page():
    def out(text): return [{'output_type': 'stream', 'name': 'stdout', 'text': text}]
    nb = notebook([code('#| hide\nimport secret'), code('#| echo: false\nshow()', out('shown\n')),
                   code('#|hide_output\nnoisy()', out('noise\n')), code('#| export\nx = 1')])
    bd.clean_notebook(nb, 'd.ipynb')
    hidden, echo, quiet, export = nb['cells']
    assert hidden['cell_type'] == 'raw' and hidden['source'] == '' and 'outputs' not in hidden  # nothing shows; numbers kept
    assert echo['metadata']['transient'] == {'remove_source': True} and echo['outputs'][0]['text'] == 'shown\n'
    assert quiet['source'] == 'noisy()' and quiet['outputs'] == []
    assert export['source'] == 'x = 1'
