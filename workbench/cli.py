"""``workbench`` command: prepare data and models, serve the dashboard, print reports.

The UI package is imported only by ``serve``: the core stays headless.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from workbench.errors import WorkbenchError


def _prepare(args: argparse.Namespace) -> None:
    if args.quiet:  # every progress bar, including the dataset builds and constant searches
        os.environ["TQDM_DISABLE"] = "1"
    from workbench.methods.registry import STUDIES
    from workbench.zoo import prepare

    for meta in prepare(progress=not args.quiet):
        m = meta["metrics"]
        print(f"{meta['model']:<18} test accuracy {m['test_accuracy']:.3f}  "
              f"(val {m['val_accuracy']:.3f}, trained in {m['train_seconds']} s)")
    for study in STUDIES.values():  # what each study builds beyond the zoo (searches, chains)
        for line in study.prepare(not args.quiet):
            print(line)


def _serve(args: argparse.Namespace) -> None:
    from widgets.app import serve

    serve(port=args.port, address=args.address, show=args.show)


def _report(args: argparse.Namespace) -> None:
    import pandas as pd

    from workbench.reports import on_source, report

    if args.model is None and args.data is not None:
        raise WorkbenchError("--data goes with --model (the default reports use their own data)")
    table = report(args.name) if args.model is None else on_source(args.name, args.model,
                                                                   args.data)
    if args.json:
        # pandas writes missing values as null (json.dumps would write NaN, which is not JSON)
        print(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
    else:
        flat = table.copy()
        for column in table.columns:  # dict cells (energy per device) become one column each
            if table[column].map(lambda v: isinstance(v, dict)).all():
                expanded = pd.DataFrame(table[column].tolist()).add_prefix(f"{column}_")
                flat = pd.concat([flat.drop(columns=column), expanded], axis=1)
        print(flat.to_string(index=False))
        for note in table.attrs.get("notes", []):
            print(note)


def _explore(args: argparse.Namespace) -> None:
    # Dask logs every worker start and stop at INFO: keep the progress bar and the table
    # readable (set before distributed is imported; worker processes inherit it)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from workbench import explore
    from workbench.explore.cli import command

    command(args, explore)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build the default datasets and train the default models")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_prepare)
    p = sub.add_parser("serve", help="serve the dashboard")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(func=_serve)
    p = sub.add_parser("report", help="print a result table")
    p.add_argument("name", help="report name, e.g. basics")
    p.add_argument("--json", action="store_true", help="rows as JSON")
    p.add_argument("--model", metavar="SOURCE", help="zoo:NAME, a .nir file or pkg.module:function "
                   "(basics, energy, early-exit; msat for an ANN)")
    p.add_argument("--data", metavar="DATA", help="digits, digits_saccade_events or NAME:FOLDER "
                   "(nmnist, dvsgesture, cifar10dvs, ncaltech101)")
    p.set_defaults(func=_report)
    from workbench.explore.cli import add_parser

    add_parser(sub, _explore)
    args = parser.parse_args(argv)
    from workbench.device import set_threads

    set_threads()
    try:
        args.func(args)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
