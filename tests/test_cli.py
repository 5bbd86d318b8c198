"The command line: `fastfit demo` and `fastfit fit` write their files; bad arguments give usage, exit code 2, no traceback."
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fastfit.cli import main

ROOT = Path(__file__).parents[1]


def run_main(args, capsys):
    "(exit code, stdout, stderr) of `fastfit ARGS` run in-process."
    try: code = main(args)
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_writes_gif_and_html(tmp_path, capsys):
    code, out, err = run_main(['demo', '--out-dir', str(tmp_path), '--frames', '6'], capsys)
    assert code == 0, err
    gif, html = tmp_path / 'fit.gif', tmp_path / 'fit.html'
    with Image.open(gif) as im: assert im.n_frames == 6
    assert html.read_text().startswith('<!DOCTYPE html>')
    # the summary: true, fitted and optimal parameters, and the files
    lines = out.splitlines()
    assert lines[0].split() == ['param', 'true', 'fitted', 'optimal']
    w = lines[1].split()
    assert w[0] == 'w' and float(w[1]) == 3.0 and abs(float(w[2]) - float(w[3])) < .01
    assert 'synth_linear: n=100, 100 steps' in out and f'wrote {gif}' in out and f'wrote {html}' in out
    assert 'importing fastfit, fastai and torch' in out  # the timing says what it includes
    assert sorted(p.name for p in tmp_path.iterdir()) == ['fit.gif', 'fit.html']  # no temp files left


def test_fit_writes_each_out_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(['fit', '--data', 'poly', '--epochs', '30', '--lr', '.05', '--out', 'a.png,b.gif',
                               '--frames', '4', '--fps', '5'], capsys)
    assert code == 0, err
    with Image.open('a.png') as im: assert im.format == 'PNG'
    with Image.open('b.gif') as im: assert im.n_frames == 4 and im.info['duration'] == 200
    assert 'synth_poly: n=100, 30 steps' in out and 'c3' in out  # a cubic of --n points


def test_fit_minibatch_steps(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(['fit', '--n', '40', '--bs', '10', '--epochs', '3', '--frames', '2', '--out', 'x.png'], capsys)
    assert code == 0, err
    assert 'n=40, 12 steps' in out  # 4 batches of 10 per epoch


def test_help(capsys):
    code, out, _ = run_main(['--help'], capsys)
    assert code == 0 and out.startswith('usage: fastfit {demo,fit}') and 'fastfit --version' in out
    code, out, _ = run_main(['fit', '--help'], capsys)
    assert code == 0 and 'usage: fastfit fit' in out
    for opt in ('--data', '--n', '--model', '--hidden', '--epochs', '--lr', '--bs', '--out', '--frames', '--fps', '--seed'):
        assert opt in out
    words = ' '.join(out.split())  # argparse wraps the help to the terminal's width
    assert '.mp4 (needs fastfit-gd[mp4])' in words and 'moons' in words and 'none = full batch' in words


def test_version(capsys):
    import fastfit
    for flag in ('--version', '-V'):
        code, out, err = run_main([flag], capsys)
        assert (code, out, err) == (0, f'fastfit {fastfit.__version__}\n', '')


def test_fit_classes_with_a_net(tmp_path, capsys, monkeypatch):
    "The command line fits what the README headlines: classes (moons) with an MLP, drawn as the moving boundary."
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(['fit', '--data', 'moons', '--model', 'mlp', '--hidden', '8', '--lr', '1', '--epochs', '20',
                               '--bs', 'none', '--frames', '3', '--out', 'm.gif'], capsys)
    assert code == 0, err
    assert out.startswith('MLPModel(n_in=2, hidden=(8,), n_out=1): 33 parameters')
    assert 'synth_moons: n=100, 20 steps' in out and 'training accuracy 0.' in out
    with Image.open('m.gif') as im: assert im.n_frames == 3 and im.size == (1040, 480)  # boundary and loss panels, side by side
    code, out, err = run_main(['fit', '--data', 'blobs', '--epochs', '5', '--frames', '2', '--out', 'b.png'], capsys)
    assert code == 0 and out.splitlines()[0].split() == ['param', 'true', 'fitted', 'optimal'], err


def test_poly_and_rollercoaster_are_different_data():
    from fastfit.cli import synth
    p, r = synth('poly', 50), synth('rollercoaster', 50)
    assert len(p) == 50 and len(r) == 20 and len(p.params) == 4 and len(r.params) == 3  # a cubic of --n points; fastbook's 20


BAD = [
    ([], 'a command is required: demo or fit'),
    (['bogus'], "unknown command 'bogus': choose from demo, fit"),
    (['fit', '--lr', 'abc'], "argument --lr: invalid float value: 'abc'"),
    (['fit', '--lr', '0'], '--lr must be a finite number > 0, got 0.0'),
    (['fit', '--lr', '-1'], '--lr must be a finite number > 0, got -1.0'),
    (['fit', '--lr', 'nan'], '--lr must be a finite number > 0, got nan'),
    (['fit', '--lr', 'inf'], '--lr must be a finite number > 0, got inf'),
    (['fit', '--data', 'cubic'], "argument --data: invalid choice: 'cubic'"),
    (['fit', '--n', '0'], '--n must be > 0 and at most 10,000,000, got 0'),
    (['fit', '--n', '1000000000'], '--n must be > 0 and at most 10,000,000, got 1,000,000,000: a command-line fit keeps'),
    (['fit', '--data', 'moons', '--n', '3'], '--n must be >= 4 for --data moons'),
    (['fit', '--model', 'cnn'], "argument --model: invalid choice: 'cnn'"),
    (['fit', '--model', 'mlp', '--hidden', '16,0'], "--hidden must be whole numbers > 0, comma-separated"),
    (['fit', '--fps', '100'], '--fps 100 is too fast for a GIF'),
    (['fit', '--fps', 'nan'], '--fps must be a finite number > 0, got nan'),
    (['fit', '--n', '2.5'], "argument --n: invalid int value: '2.5'"),
    (['fit', '--epochs', '-3'], '--epochs must be > 0, got -3'),
    (['fit', '--bs', '-1'], "--bs must be a whole number > 0, or none for full batch, got '-1'"),
    (['fit', '--bs', '0'], "--bs must be a whole number > 0, or none for full batch, got '0'"),
    (['fit', '--bs', 'all'], "--bs must be a whole number > 0, or none for full batch, got 'all'"),
    (['fit', '--frames', '0'], '--frames must be > 0, got 0'),
    (['fit', '--fps', '0'], '--fps must be a finite number > 0, got 0'),
    (['fit', '--out', 'fit.mp5'], "--out 'fit.mp5': each file must end in one of .gif, .html, .mp4, .png"),
    (['fit', '--out', ','], "each file must end in one of .gif, .html, .mp4, .png"),
    (['fit', '--out', 'no/such/dir/fit.gif'], "folder 'no/such/dir' does not exist; create it first"),
    (['fit', '--seed', 'x'], "argument --seed: invalid int value: 'x'"),
    (['fit', '--nope', '3'], 'unrecognized arguments: --nope 3'),
    (['demo', '--out-dir', 'no/such/dir'], "--out-dir 'no/such/dir' is not a folder"),
    (['demo', '--frames', '0'], '--frames must be > 0, got 0'),
    (['demo', 'extra'], 'unrecognized arguments: extra'),
]


@pytest.mark.parametrize('args, msg', BAD, ids=[' '.join(a) or '(none)' for a, _ in BAD])
def test_bad_arguments_usage_and_exit_2(args, msg, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(args, capsys)
    assert code == 2
    assert 'usage: fastfit' in err and 'error: ' in err and msg in err, err
    assert 'Traceback' not in err + out
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert 'bs=' not in err and 'lr=' not in err and 'lr_find' not in err  # the command's flags, not Python advice


def test_every_setting_is_checked_before_the_fit(tmp_path, capsys, monkeypatch):
    "A setting the writers would refuse (.mp4 without its extra, a GIF's fps) fails at once: nothing is fitted or written."
    import fastfit.writers
    monkeypatch.chdir(tmp_path)
    def no_ffmpeg(name): raise ImportError(fastfit.writers._FFMPEG_MISSING.format(name=str(name)))
    monkeypatch.setattr(fastfit.writers, '_imageio_ffmpeg', no_ffmpeg)
    import fastfit.cli
    monkeypatch.setattr(fastfit.cli, 'run_fit', lambda *a, **k: pytest.fail('the fit ran before the settings were checked'))
    code, out, err = run_main(['fit', '--out', 'x.mp4'], capsys)
    assert code == 2 and "needs the optional extra fastfit-gd[mp4]" in err and "pip install 'fastfit-gd[mp4]'" in err
    code, out, err = run_main(['fit', '--out', 'a.html,b.gif', '--fps', '60'], capsys)
    assert code == 2 and '--fps 60 is too fast for a GIF' in err
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_fit_fails_naming_the_flag(tmp_path, capsys, monkeypatch):
    "`fastfit fit --lr 1e6` diverges: exit status 1, advice in the command's own flags, no file written."
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(['fit', '--lr', '1e6', '--epochs', '50', '--out', 'fit.gif'], capsys)
    assert code == 1, (out, err)
    assert err.startswith('fastfit: error: --lr 1e+06 made the training loss diverge (NaN/inf) at step ')
    assert 'try --lr 100000 (a tenth), or smaller' in err and 'nothing was written' in err
    assert 'lr=' not in err + out and 'lr_find' not in err + out and 'Traceback' not in err + out
    assert list(tmp_path.iterdir()) == []


def _script(args, cwd, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND='Agg')
    return subprocess.run([sys.executable, '-m', 'fastfit', *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize('args, msg', [(['fit', '--lr', '-1'], '--lr must be a finite number > 0'),
                                       (['fit', '--data', 'cubic'], 'invalid choice'),
                                       (['demo', '--frames', 'many'], "invalid int value: 'many'"),
                                       (['nope'], "unknown command 'nope'"),
                                       ([], 'a command is required')])
def test_script_bad_arguments(args, msg, tmp_path):
    r = _script(args, tmp_path)
    assert r.returncode == 2 and 'usage: fastfit' in r.stderr and msg in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr + r.stdout
    assert list(tmp_path.iterdir()) == []


def test_script_runs_a_fit(tmp_path):
    "`python -m fastfit` runs only the command asked for (nothing at import) and writes its file."
    r = _script(['fit', '--epochs', '5', '--frames', '3', '--out', 'run.gif'], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run.gif']
    assert '5 steps' in r.stdout and 'Traceback' not in r.stderr


def test_console_script_entry_point(tmp_path):
    "The installed `fastfit` console script (make test installs it) gives the same usage error."
    exe = Path(sys.executable).parent / 'fastfit'
    if not exe.exists(): pytest.skip(f"no console script at {exe}: the package is not installed in this environment")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([str(exe), 'fit', '--epochs', '0'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and '--epochs must be > 0, got 0' in r.stderr and 'Traceback' not in r.stderr
