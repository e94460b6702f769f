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
    from workbench.methods.msat_study import DATASETS, setting
    from workbench.zoo import prepare

    for meta in prepare(progress=not args.quiet):
        m = meta["metrics"]
        print(f"{meta['model']:<18} test accuracy {m['test_accuracy']:.3f}  "
              f"(val {m['val_accuracy']:.3f}, trained in {m['train_seconds']} s)")
    for dataset in DATASETS:  # MSAT constants, searched on the validation split once
        found = setting(dataset).constants
        print(f"MSAT constants ({dataset}): " + "; ".join(
            f"{mode} α={c.alpha:.2f}" for mode, c in found.items()))
    from workbench.methods.iir_study import DATASETS as IIR_DATASETS
    from workbench.methods.iir_study import study

    for dataset in IIR_DATASETS:  # the T = 5 → 1 chain and its baselines, one checkpoint each
        _, _, chain = study(dataset, progress=not args.quiet)
        print(f"IIR chain ({dataset}): T=1 test accuracy {chain['T1'][1]['test_accuracy']:.3f}")
    from workbench.methods.hybrid_study import prepare as prepare_hybrid

    for meta in prepare_hybrid(progress=not args.quiet):  # the pose ANN and SNN variants
        m = meta["metrics"]
        print(f"pose {meta['model']:<22} final loss {m['final_loss']:.3f}"
              + (f"  (trained in {m['train_seconds']} s)" if "train_seconds" in m else ""))


def _serve(args: argparse.Namespace) -> None:
    from widgets.app import serve

    serve(port=args.port, address=args.address, show=args.show)


def _report(args: argparse.Namespace) -> None:
    import pandas as pd

    from workbench.reports import REPORTS, SOURCE_REPORTS, on_source

    if args.name not in REPORTS:
        raise WorkbenchError(f"unknown report {args.name!r}; available: {', '.join(REPORTS)}")
    if args.model is None and args.data is not None:
        raise WorkbenchError("--data goes with --model (the default reports use their own data)")
    if args.model is not None and args.name not in SOURCE_REPORTS:
        raise WorkbenchError(f"report {args.name!r} needs its method-specific models; --model "
                             f"works with {', '.join(SOURCE_REPORTS)}")
    table = (REPORTS[args.name]() if args.model is None
             else on_source(args.name, args.model, args.data))
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
