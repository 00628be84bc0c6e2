"""Where a benchmark writes: out/results unless asked for the committed results in docs/."""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS_RESULTS = REPO / "docs" / "results"


def add_out_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=REPO / "out" / "results",
                        help="folder for the JSON and plots (default: out/results; --out docs/results updates "
                             "the committed results and their page in docs/)")


def page_path(out: Path, name: str) -> Path:
    """A markdown page: docs/NAME beside the committed results, else in ``out`` with the JSON."""
    return REPO / "docs" / name if out.resolve() == DOCS_RESULTS.resolve() else out / name
