"""``eventsnn sweep SPEC.json``: a grid of conversion and simulation settings over checkpoints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atomic import check_writable, write_text
from ..pipeline import DEFAULTS, cluster
from .options import POSITIVE, add_cluster, add_connectivity, connectivity


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid of conversion and simulation settings over checkpoints; "
                                     "one JSON report and a summary table (spec format: docs/usage.md)")
    p.add_argument("spec", help="the sweep spec (JSON)")
    p.add_argument("-o", "--output-file", required=True,
                   help="the JSON of all cells (.json; a .md table with the same name goes beside it)")
    p.add_argument("--batch", type=POSITIVE, default=DEFAULTS.batch, help="samples per batch")
    p.add_argument("--threads", type=POSITIVE, help="threads of the event engine (default: all cores)")
    add_connectivity(p)
    add_cluster(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sweep import read_spec, run_sweep, summary_table

    out = Path(args.output_file)
    table_file = out.with_suffix(".md")
    if table_file == out:
        raise ValueError(f"{out}: the JSON report needs another name than its .md table (e.g. {out.with_suffix('.json')})")
    spec = read_spec(args.spec)
    check_writable(out, (args.spec,))
    check_writable(table_file, (args.spec,))
    with cluster(args.scheduler, args.workers) as client:
        sweep = run_sweep(spec, connectivity(args), args.batch, args.threads, client, args.chunk)
    table = summary_table(sweep)
    print(table)
    write_text(out, json.dumps(sweep, indent=1))
    write_text(table_file, table + "\n")
    print(f"wrote {out} and {table_file} ({len(sweep['cells'])} cells)")
    return 0
