"""``workbench`` command: prepare data and models, serve the dashboard, print reports.

The UI package is imported only by ``serve``: the core stays headless.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from workbench.errors import WorkbenchError


def _prepare(args: argparse.Namespace) -> None:
    if args.quiet:  # every progress bar, including the dataset builds and constant searches
        os.environ["TQDM_DISABLE"] = "1"
    from workbench import cache

    with cache.rebuilding() if args.retrain else contextlib.nullcontext():
        _prepare_all(progress=not args.quiet)
    if args.export:
        written = cache.export(args.export)
        print(f"exported {len(written)} artifacts with their sidecars to {args.export}")


def _prepare_all(progress: bool) -> None:
    from workbench.methods.registry import STUDIES
    from workbench.zoo import prepare

    for meta in prepare(progress=progress):
        m = meta["metrics"]
        print(f"{meta['model']:<18} test accuracy {m['test_accuracy']:.3f}  "
              f"(val {m['val_accuracy']:.3f}, trained in {m['train_seconds']} s)")
    for study in STUDIES.values():  # what each study builds beyond the zoo (searches, chains)
        for line in study.prepare(progress):
            print(line)


def _serve(args: argparse.Namespace) -> None:
    from widgets.app import serve

    if args.model is None and args.data is not None:
        raise WorkbenchError("--data goes with --model (the default pages use their own data)")
    background = None
    if not args.no_prepare:
        # the first page is served at once (its model ships); the rest is loaded or built into
        # the cache meanwhile, in a niced process so that it never starves the server (the GIL)
        background = subprocess.Popen([sys.executable, "-m", "workbench.cli", "prepare", "--quiet"],
                                      preexec_fn=lambda: os.nice(10))
        print(f"preparing the other pages' data and models in the background (pid {background.pid})",
              flush=True)

    if args.address not in ("127.0.0.1", "localhost") and not args.allow_websocket_origin:
        print(f"note: other machines reach {args.address} only if their address is allowed: add "
              "--allow-websocket-origin HOST[:PORT] (the name or IP they type)", file=sys.stderr)
    try:
        serve(port=args.port, address=args.address, show=args.show,
              allowed_origins=tuple(args.allow_websocket_origin), model=args.model, data=args.data)
    finally:
        if background is not None and background.poll() is None:
            background.terminate()


def _report(args: argparse.Namespace) -> None:
    import pandas as pd

    from workbench.reports import on_source, report, stored

    if args.model is None and args.data is not None:
        raise WorkbenchError("--data goes with --model (the default reports use their own data)")
    if args.model is not None:
        table = on_source(args.name, args.model, args.data)
    else:
        table = report(args.name) if args.live else stored(args.name, args.budget)
    if args.json:
        # pandas writes missing values as null (json.dumps would write NaN, which is not JSON)
        print(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
    else:
        flat = table.copy()
        for column in table.columns:  # dict cells (energy per device) become one column each
            if table[column].map(lambda v: isinstance(v, dict)).all():
                expanded = pd.DataFrame(table[column].tolist()).add_prefix(f"{column}_")
                flat = pd.concat([flat.drop(columns=column), expanded], axis=1)
        if any(c.endswith("_low") for c in flat.columns):  # stored results: mean ± half interval
            from workbench.reproduce import shown

            kept = [c for c in flat.columns if not c.endswith(("_low", "_high"))]
            flat = pd.DataFrame({c: [shown(r, c) for _, r in flat.iterrows()] for c in kept})
        print(flat.to_string(index=False, na_rep=""))  # a missing cell is empty, never NaN
        for note in table.attrs.get("notes", []):
            print(note)


def _reproduce(args: argparse.Namespace) -> None:
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # as for explore
    from workbench.reproduce import reproduce

    path = reproduce(args.name, args.seeds, args.budget, args.workers, args.scheduler,
                     args.storage, progress=not args.quiet)
    print(f"wrote {path}; `workbench report {args.name}"
          + (f" --budget {args.budget}" if args.budget != "full" else "")
          + "` reads it, `workbench readme` puts it in README.md")


def _readme(args: argparse.Namespace) -> None:
    from workbench.readme import render

    text = args.path.read_text()
    new = render(text)
    if args.check:
        if new != text:
            raise WorkbenchError(f"{args.path} differs from the stored results; run "
                                 "`workbench readme` and commit it")
        print(f"{args.path} matches the stored results")
        return
    args.path.write_text(new)
    print(f"{args.path}: result tables {'rewritten' if new != text else 'already current'}")


def _explore(args: argparse.Namespace) -> None:
    # Dask logs every worker start and stop at INFO: keep the progress bar and the table
    # readable (set before distributed is imported; worker processes inherit it)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from workbench import explore
    from workbench.explore.cli import command

    command(args, explore)


def main(argv: list[str] | None = None) -> int:
    from workbench import __version__
    from workbench.methods.registry import STUDIES
    from workbench.study import BUDGETS

    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="make sure the default datasets and models exist (shipped "
                       "prebuilt, verified by hash; the rest built once into the user cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--retrain", action="store_true",
                   help="rebuild every model into the user cache instead of using shipped ones")
    p.add_argument("--export", metavar="DIR", type=Path,
                   help="copy every artifact used, with its provenance sidecar, under DIR "
                   "(make artifacts: --retrain --export workbench/artifacts)")
    p.set_defaults(func=_prepare)
    p = sub.add_parser("serve", help="serve the dashboard (loopback unless told otherwise)")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="127.0.0.1",
                   help="interface to listen on (0.0.0.0: every interface, for a classroom)")
    p.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                   help="a host whose browsers may connect (repeatable; without a port, --port)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--no-prepare", action="store_true",
                   help="do not prepare every page's models in the background while serving")
    p.add_argument("--model", metavar="SOURCE", help="serve 'Your model' first: zoo:NAME, a .nir "
                   "file or pkg.module:function")
    p.add_argument("--data", metavar="DATA", help="the data of --model (as for report)")
    p.set_defaults(func=_serve)
    p = sub.add_parser("report", help=f"print a result table: {', '.join(STUDIES)}")
    p.add_argument("name", help=f"report name: {', '.join(STUDIES)}")
    p.add_argument("--json", action="store_true", help="rows as JSON")
    p.add_argument("--live", action="store_true", help="run the study now on the shipped models "
                   "(seed 0) instead of reading its stored results")
    p.add_argument("--budget", default="full", choices=tuple(BUDGETS),
                   help="which stored results (made with `workbench reproduce --budget`)")
    p.add_argument("--model", metavar="SOURCE", help="zoo:NAME, a .nir file or pkg.module:function "
                   "(basics, energy, early-exit; msat for an ANN)")
    p.add_argument("--data", metavar="DATA", help="digits, digits_saccade_events or NAME:FOLDER "
                   "(nmnist, dvsgesture, cifar10dvs, ncaltech101)")
    p.set_defaults(func=_report)
    p = sub.add_parser("reproduce", help="run a study's full report over seeds (a resumable "
                       "exploration session) and store its results (workbench/data/results/)")
    p.add_argument("name", help=f"study: {', '.join(STUDIES)}")
    p.add_argument("--seeds", type=int, help="seeds 0 … N−1 (default: the study's minimum, 3 "
                   "training or 5 gate seeds; 1 for a deterministic study)")
    p.add_argument("--budget", default="full", choices=tuple(BUDGETS),
                   help="training budget of models that are not shipped (tiny: one epoch, for "
                   "tests; its results go to NAME-tiny.json)")
    p.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="tcp://HOST:PORT of a running Dask "
                   "scheduler, or 'inline'")
    p.add_argument("--storage", metavar="URL", help="Optuna RDB URL of the session store "
                   "(default: reproduce/sessions.db under the cache folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_reproduce)
    p = sub.add_parser("readme", help="rewrite README.md's result tables from the stored results")
    p.add_argument("--path", type=Path, default=Path("README.md"))
    p.add_argument("--check", action="store_true",
                   help="only check that the README matches the stored results (exit 2 if not)")
    p.set_defaults(func=_readme)
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
