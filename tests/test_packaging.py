"""The package as users install it: a regular (non-editable) install carries every subpackage,
``eventsnn.loaders`` (which lives in the top-level ``loaders/`` folder, mapped by ``package-dir`` in
pyproject.toml) and the data the demo needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_regular_install_carries_the_loaders_the_cli_and_the_demo_data(tmp_path):
    source, target = tmp_path / "source", tmp_path / "site"
    source.mkdir()
    for part in ("pyproject.toml", "README.md"):  # pip builds in the tree it is given: a copy, not the checkout
        shutil.copy(ROOT / part, source / part)
    for part in ("eventsnn", "loaders"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                              str(source)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = ("import eventsnn, eventsnn.loaders, eventsnn.cli, eventsnn.engine, eventsnn.testing\n"
             "from importlib import resources\n"
             "print(eventsnn.__file__); print(eventsnn.loaders.__file__)\n"
             "print(all((resources.files('eventsnn') / 'data' / f).is_file() "
             "for f in ('mnist_cnn.pt', 'mnist_cnn.json', 'mnist_sample.npz')))\n")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    package, loaders, data = run.stdout.split()
    assert Path(package).is_relative_to(target) and Path(loaders).is_relative_to(target)
    assert Path(loaders).parent == Path(package).parent / "loaders"
    assert data == "True"


def test_scripts_write_into_docs_only_when_asked():
    """A trial run of a benchmark or reproduction script writes to out/ (``--out docs/results`` to
    replace the committed results), so no script names docs/ as a place to write by default.
    results_markdown.py exists to turn docs/results into docs/results.md."""
    import re

    scripts = [p for p in [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("examples/*.py")]
               if p.name not in ("outputs.py", "results_markdown.py")]
    assert len(scripts) > 10
    writing_docs = [p.name for p in scripts if re.search(r'/\s*"docs"', p.read_text())]
    assert writing_docs == []
