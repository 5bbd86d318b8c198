"""Execute the notebooks in nbs/ in place with a real Jupyter kernel (`make nbs`), so that their stored outputs are
what a reader of the notebook sees today: animations in fastfit's notebook layout, pictures from the inline backend.

    python tools/run_notebooks.py [nbs/00_quickstart.ipynb ...]   # default: every nbs/*.ipynb

Deterministic as far as the notebooks are: a fixed hash seed, one maths thread, execution counts from 1, no timing
metadata, and the notebook's own metadata (kernelspec, language_info) kept as it was, so a re-run changes only outputs that changed.
A notebook whose cell raises is left untouched and the run exits with status 1, naming the notebook and the cell.
"""
import argparse
import copy
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'


def run_notebook(path:Path, timeout:int=600, kernel:str='python3') -> float:
    """Execute the notebook at `path` and write it back with the new outputs; return the seconds it took. It runs in a
    copy of its folder: files it writes there come back only where they were already there (a GIF it shows by path),
    so nothing new (an exported learner, say) is left beside it."""
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config
    nb = nbformat.read(path, as_version=4)
    meta = copy.deepcopy(nb.metadata)  # nbclient writes language_info (the Python version) into it
    start = time.perf_counter()
    # The kernel's environment: a fixed hash seed; one thread for torch's and numpy's maths, so that numbers do not
    # depend on the machine's cores (threaded sums round differently) and a busy machine does not stall OpenMP; and
    # matplotlib's backend left to the kernel (inline) whatever this process uses (the tests set MPLBACKEND=Agg).
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}
    env |= {'PYTHONHASHSEED': '0', 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    with tempfile.TemporaryDirectory(prefix='fastfit-nbs-') as tmp:
        work = Path(tmp) / path.parent.name
        shutil.copytree(path.parent, work, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '*.ipynb'))
        before = {p: p.read_bytes() for p in work.rglob('*') if p.is_file()}
        # local sockets, not TCP: nothing listens on a port, and ipykernel has no plain-text transport to warn about
        local = Config({'KernelManager': {'transport': 'ipc', 'ip': str(Path(tmp) / 'kernel')}})
        NotebookClient(nb, kernel_name=kernel, config=local, timeout=timeout, record_timing=False, allow_errors=False,
                       resources={'metadata': {'path': str(work)}}).execute(env=env)
        for p, old in before.items():
            if p.is_file() and p.read_bytes() != old: write_atomic(path.parent / p.relative_to(work), p.read_bytes())
    nb.metadata = meta
    for cell in nb.cells: cell.metadata.pop('execution', None)
    write_atomic(path, nbformat.writes(nb).encode() + b'\n')
    return time.perf_counter() - start


def write_atomic(path:Path, data:bytes):
    "Write `data` to `path` through a temporary file beside it: never a half-written notebook."
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        Path(tmp).write_bytes(data)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to run (default: every nbs/*.ipynb)')
    p.add_argument('--timeout', type=int, default=600, help='seconds a cell may take')
    args = p.parse_args(argv)
    paths = [Path(n).resolve() for n in args.notebooks] or sorted(NBS.glob('*.ipynb'))
    missing = [str(n) for n in paths if not n.is_file()]
    if missing:
        print(f"run_notebooks: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError
    failed = []
    for path in paths:
        name = path.relative_to(ROOT) if ROOT in path.parents else path
        try: secs = run_notebook(path, args.timeout)
        except CellExecutionError as e:
            failed.append(str(name))
            print(f"{name}: a cell failed; the notebook is left as it was\n{e}", file=sys.stderr)
            continue
        print(f"{name}: {secs:.1f} s, {path.stat().st_size / 1e3:,.0f} kB")
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
