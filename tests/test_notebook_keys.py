"""The player's keys in real notebook front ends (Notebook 7 and JupyterLab 4, one server started here on a free port
with a token, stopped at the end, in Debian's headless chromium): where the player has the focus, the arrow keys step
it and the notebook does nothing with them (no cell selected or collapsed); with the slider focused, one step a key."""
import pytest
from test_jupyter import Lab, Opened  # the same server and page helpers

FRAMES = 12
CELL = f"learn.animate(frames={FRAMES}, fps=10, panels=('fit',), dpi=50)"


@pytest.fixture(scope='module')
def server(tmp_path_factory, browser):
    "A Jupyter server (JupyterLab and Notebook 7) with `keys.ipynb`: headings around a trusted animation."
    pytest.importorskip('notebook', reason="Notebook 7 is missing: pip install -e '.[dev]'")
    import nbformat  # here, not at the top: importing nbformat costs seconds in every xdist worker
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from fastfit.all import regression_learner, synth_linear
    learn = regression_learner(synth_linear(n=40, seed=0).dataloaders(bs=None, valid_pct=0))
    with learn.no_bar(), learn.no_logging(): learn.fit(20)
    outs = [new_output('display_data', data=d) for d in eval(CELL, {'learn': learn}).outputs()]
    root, home = tmp_path_factory.mktemp('keys_root'), tmp_path_factory.mktemp('keys_home')
    lab = Lab(root, home)
    try:
        nb = new_notebook(cells=[new_markdown_cell('# A heading'), new_markdown_cell('Some words.'),
                                 new_code_cell(CELL, outputs=outs, execution_count=1), new_markdown_cell('## Another heading'),
                                 new_markdown_cell('More words.')],
                          metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}})
        lab.sign(nb)
        nbformat.write(nb, root / 'keys.ipynb')
        yield lab
    finally: lab.stop()


def notebook_state(pg) -> tuple:
    "(the active cell's index, the cells shown, the headings collapsed): what the notebook's arrow-key commands change."
    return pg.evaluate("""() => { const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
        return [cells.findIndex(c => c.classList.contains('jp-mod-active')),
                cells.filter(c => c.offsetParent !== null).length,
                document.querySelectorAll('.jp-collapseHeadingButton[data-heading-collapsed="true"]').length]; }""")


URLS = {'notebook7': lambda lab: f'{lab.url}/notebooks/keys.ipynb?token={lab.token}', 'lab': lambda lab: lab.notebook_url('keys.ipynb')}


@pytest.mark.parametrize('front', list(URLS))
def test_the_player_takes_the_arrow_keys_where_it_has_focus(browser, server, front):
    o = Opened(browser, URLS[front](server), allowed=('data:', 'blob:', server.url, server.url.replace('http', 'ws')))
    try:
        pg = o.page
        player = pg.locator('.jp-OutputArea-output .ff-player')
        player.locator('.ff-canvas').wait_for(state='visible', timeout=60000)
        pg.wait_for_timeout(500)  # the notebook settles (its first active cell)
        label = player.locator('.ff-label')
        assert label.text_content() == f'1/{FRAMES}'
        player.locator('.ff-canvas').click()
        pg.wait_for_timeout(200)  # a notebook may move the focus to itself after a click in an output
        before = notebook_state(pg)
        for key in ('ArrowRight', 'ArrowRight', 'ArrowRight', 'ArrowLeft'): pg.keyboard.press(key)
        assert label.text_content() == f'3/{FRAMES}'
        pg.keyboard.press('ArrowDown'); pg.keyboard.press('ArrowUp')
        assert notebook_state(pg) == before, f'{front}: the notebook acted on the keys the player took'
        player.locator('.ff-slider').focus()  # the slider steps itself: once a key, and the notebook stays
        pg.keyboard.press('ArrowRight')
        assert label.text_content() == f'4/{FRAMES}'
        pg.keyboard.press('ArrowLeft'); pg.keyboard.press('ArrowLeft')
        assert label.text_content() == f'2/{FRAMES}' and notebook_state(pg) == before
        # a click elsewhere gives the keys back to the notebook
        pg.locator('.jp-Notebook .jp-Cell').first.click()
        pg.keyboard.press('Escape'); pg.keyboard.press('ArrowDown')
        assert label.text_content() == f'2/{FRAMES}'
        assert [e for e in o.errors if 'fastfit' in e or 'ff-' in e] == []
    finally: o.close()
