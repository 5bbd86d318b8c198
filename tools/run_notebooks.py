"""Execute the notebooks in nbs/ in place with a real Jupyter kernel (`make nbs`), so that their stored outputs are
what a reader of the notebook sees today: animations in fastfit's notebook layout, pictures from the inline backend.

    python tools/run_notebooks.py [nbs/00_quickstart.ipynb ...]   # default: every nbs/*.ipynb

Deterministic as far as the notebooks are: a fixed hash seed, execution counts from 1, no timing metadata, and the
notebook's own metadata (kernelspec, language_info) kept as it was, so a re-run changes only outputs that changed.
A notebook whose cell raises is left untouched and the run exits with status 1, naming the notebook and the cell.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'


def run_notebook(path:Path, timeout:int=600, kernel:str='python3') -> float:
    "Execute the notebook at `path` in its own folder and write it back with the new outputs; return the seconds it took."
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata
    start = time.perf_counter()
    env = {'PYTHONHASHSEED': '0'}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        with tempfile.TemporaryDirectory(prefix='fastfit-kernel-') as sockets:
            # local sockets, not TCP: nothing listens on a port, and ipykernel has no plain-text transport to warn about
            km = KernelManager(kernel_name=kernel, transport='ipc', ip=os.path.join(sockets, 'k'))
            NotebookClient(nb, km=km, timeout=timeout, record_timing=False, allow_errors=False,
                           resources={'metadata': {'path': str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    nb.metadata = meta
    for cell in nb.cells: cell.metadata.pop('execution', None)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.stem}.', suffix='.ipynb', dir=path.parent)
    os.close(fd)
    try:
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return time.perf_counter() - start


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
