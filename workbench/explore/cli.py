"""``workbench explore new|run|resume|list|show|export``: exploration sessions on the command
line (see :mod:`workbench.explore`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pandas as pd

from workbench.errors import WorkbenchError

SUMMARY_WIDTH = 110


def add_parser(sub, func) -> None:
    """The ``explore`` sub-commands, on ``sub`` (the top-level subparsers)."""
    p = sub.add_parser("explore", help="parameter-exploration sessions (Optuna + Dask)")
    p.set_defaults(func=func)
    ex = p.add_subparsers(dest="action", required=True)
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument("--storage", metavar="URL", help="an Optuna RDB URL (default: SQLite "
                         "under the cache folder), e.g. postgresql://host/db to share")
    running = argparse.ArgumentParser(add_help=False)
    running.add_argument("--scheduler", metavar="ADDRESS", help="tcp://HOST:PORT of a running "
                         "Dask scheduler (default: a LocalCluster on this machine), or 'inline'")
    running.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    running.add_argument("--quiet", action="store_true", help="no progress bar")
    n = ex.add_parser("new", parents=[storage, running], help="define a session")
    n.add_argument("name")
    n.add_argument("--study", required=True, help="the study searched, e.g. msat or energy")
    n.add_argument("--vary", action="append", required=True, metavar="FIELD[=RANGE]",
                   help="a field to vary: its whole knob range, LOW:HIGH or A,B,... (repeat)")
    n.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="fix a field that is not varied (repeat)")
    n.add_argument("--sampler", default="random", help="grid, random or nsga2 (Pareto search)")
    n.add_argument("--budget", type=int, default=8, help="settings sampled (× seeds = trials)")
    n.add_argument("--seeds", default="0", help="comma-separated seeds, each setting runs once "
                   "per seed")
    n.add_argument("--steps", type=int, default=3, help="grid points per numeric range")
    n.add_argument("--run", action="store_true", help="run it at once (--scheduler, --workers)")
    for action in ("run", "resume"):
        r = ex.add_parser(action, parents=[storage, running],
                          help="run a new session" if action == "run"
                          else "continue a stopped session (interrupted trials re-run once)")
        r.add_argument("name")
    ex.add_parser("list", parents=[storage], help="every session in the store")
    s = ex.add_parser("show", parents=[storage], help="a session's spec and Pareto front")
    s.add_argument("name")
    e = ex.add_parser("export", parents=[storage], help="write a session as CSV or Parquet")
    e.add_argument("name")
    e.add_argument("path", type=Path, help="NAME.csv or NAME.parquet")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise WorkbenchError(f"--seeds takes whole numbers separated by commas, got {text!r}"
                             ) from None


def summary(name: str, explore: ModuleType, storage: str | None) -> str:
    """The Pareto-optimal trials of a session as a text table."""
    table = explore.frame(name, storage)
    if table.empty:
        return "no finished trials yet"
    front = explore.pareto(table)
    columns = ["trial", "seed", *table.attrs["varied"], *table.attrs["objectives"], "wall_s"]
    shown = front[columns].rename(columns=lambda c: c.removeprefix("setting."))
    return (f"Pareto-optimal trials ({len(front)} of {len(table)} complete; "
            + ", ".join(f"{k} {'↑' if d == 'maximize' else '↓'}"
                        for k, d in table.attrs["objectives"].items()) + "):\n"
            + shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def command(args: argparse.Namespace, explore: ModuleType) -> None:
    """Carry out ``args.action``."""
    from workbench.explore.spec import explorable

    if args.action == "new":
        study = explorable(args.study)
        spec = explore.SessionSpec(
            args.name, args.study, explore.parse_vary(study, args.vary, args.steps),
            explore.parse_fixed(study, args.set), args.sampler, _seeds(args.seeds), args.budget)
        explore.create(spec, explore.open_storage(args.storage))
        print(f"session {spec.name}: {args.study}, {spec.sampler}, {spec.trials_planned} trials "
              f"({spec.settings_planned} settings × {len(spec.seeds)} seeds)")
        if not args.run:
            return
        args.action = "run"
    if args.action in ("run", "resume"):
        counts = explore.run(args.name, args.storage, args.scheduler, args.workers,
                             progress=not args.quiet, fresh=args.action == "run")
        print(f"session {args.name}: {counts.complete} complete, {counts.failed} failed of "
              f"{counts.planned}")
        print(summary(args.name, explore, args.storage))
    elif args.action == "list":
        st = explore.open_storage(args.storage)
        lines = []
        for name in explore.session_names(st):
            spec, study = explore.load(name, st)
            c = explore.progress(spec, study)
            lines.append({"session": name, "study": spec.study, "sampler": spec.sampler,
                          "varied": ",".join(d.name for d in spec.vary), "complete": c.complete,
                          "failed": c.failed, "planned": c.planned,
                          "state": "done" if c.done else "unfinished"})
        print(pd.DataFrame(lines).to_string(index=False) if lines else "no sessions yet")
    elif args.action == "show":
        st = explore.open_storage(args.storage)
        spec, study = explore.load(args.name, st)
        c = explore.progress(spec, study)
        print(f"session {spec.name}: study {spec.study}, sampler {spec.sampler}, seeds "
              f"{list(spec.seeds)}, {c.complete} complete, {c.failed} failed of {c.planned}")
        for d in spec.vary:
            span = d.choices if d.choices is not None else f"[{d.low:g}, {d.high:g}]"
            print(f"  vary {d.name}: {span}")
        for k, v in spec.fixed:
            print(f"  set  {k} = {v!r}")
        print(summary(args.name, explore, args.storage))
    elif args.action == "export":
        print(f"wrote {explore.export(args.name, args.path, args.storage)}")
