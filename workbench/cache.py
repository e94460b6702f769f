"""The one artifact store: every file the workbench generates (datasets, models, searched
constants), keyed by the setting that made it, written atomically and verified by SHA-256.

Store API (what the load-or-train paths call)::

    value, record = load_or_build(kind, setting, build, STATE_DICT, seed=0, meta={...})

- ``kind`` names the artifact family (``"digits_ann"``, ``"pose-ann"``, ``"iir-chain"``);
  ``setting`` is a frozen dataclass or a JSON-able dict: its hash (:func:`config_key`) is the
  key, so a changed knob is a different artifact. The file is ``<folder>/<kind>-<key>.<suffix>``.
- ``build()`` returns ``(value, metrics)``; it runs only when no valid entry exists (or inside
  :func:`rebuilding`, or with ``rebuild=True``). The value is written with the serialiser
  (``STATE_DICT`` for any nested dict of tensors, ``JSON`` for plain data) and read back, so a
  caller always gets what is stored. An exception in ``build`` writes nothing.
- Lookup order: the user cache (:func:`cache_dir`), then the prebuilt artifacts shipped inside
  the package (:func:`shipped_dir`, same relative path). An entry whose payload fails its
  recorded hash is never used: a user-cache entry is deleted and rebuilt, a shipped one is left
  in place and rebuilt into the user cache, both with a warning.
- ``record`` is the provenance sidecar: ``kind``, ``key``, ``config`` (the setting), ``seed``,
  ``metrics``, ``command`` (what rebuilds it), ``argv`` (what built it), ``versions``,
  ``git_commit`` (when built in a git checkout), ``created`` (UTC), ``sha256``, ``bytes``, plus
  the caller's ``meta``.
- :func:`rebuilding` (``workbench prepare --retrain``) rebuilds every artifact once into the
  user cache; :func:`export` (``--export DIR``) copies every artifact resolved in this process
  with its sidecar, which is how ``workbench/artifacts/`` is made (``make artifacts``).

:func:`read_entry` / :func:`write_entry` are the store's verified, atomic file layer (payload
first, sidecar last: a crash leaves the old entry or one without a valid sidecar).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

ENV_VAR = "WORKBENCH_CACHE"
APP_NAME = "snn-latency-workbench"
PREPARE = "workbench prepare --retrain"


def cache_dir() -> Path:
    """The user cache folder: ``$WORKBENCH_CACHE``, else the platform's user cache folder
    (``~/.cache/snn-latency-workbench`` on Linux)."""
    root = os.environ.get(ENV_VAR)
    if root:
        path = Path(root)
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir(APP_NAME, appauthor=False))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot create cache folder {path} ({exc}); set {ENV_VAR} to a "
                             "writable folder") from None
    return path


def shipped_dir() -> Path:
    """The prebuilt artifacts that ship inside the package (read-only)."""
    return Path(__file__).resolve().parent / "artifacts"


def _jsonable(setting: Any) -> Any:
    if dataclasses.is_dataclass(setting) and not isinstance(setting, type):
        return dataclasses.asdict(setting)
    return setting


def config_key(config: Any) -> str:
    """A short stable hash of a setting (frozen dataclass or JSON-able dict): the store key."""
    text = json.dumps(_jsonable(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------- verified, atomic entries


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sidecar_path(path: Path) -> Path:
    """Where the sidecar of payload ``path`` lives (never the payload itself)."""
    return path.with_name(path.name + ".meta.json")


def write_entry(path: Path, payload: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """Store ``payload`` at ``path`` with its sidecar (hash + ``meta``); return the sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, payload)
    sidecar = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), **meta}
    _write_atomic(sidecar_path(path), json.dumps(sidecar, indent=2, default=str).encode())
    return sidecar


def read_entry(path: Path, remove_invalid: bool = True) -> tuple[bytes, dict[str, Any]] | None:
    """The verified payload and metadata at ``path``, or None when absent or invalid. An invalid
    entry is reported with a warning (so the caller rebuilds it) and, with ``remove_invalid``,
    deleted."""
    sidecar = sidecar_path(path)
    if not path.exists() or not sidecar.exists():
        return None
    try:
        meta = json.loads(sidecar.read_text())
        payload = path.read_bytes()
        valid = (len(payload) == meta["bytes"]
                 and hashlib.sha256(payload).hexdigest() == meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        warnings.warn(f"cache entry {path} is corrupt or half-written (it fails its recorded "
                      "SHA-256); rebuilding it", stacklevel=3)
        if remove_invalid:
            path.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
        return None
    return payload, meta


# ---------------------------------------------------------------- serialisers


@dataclasses.dataclass(frozen=True)
class Serializer:
    """How one artifact type becomes bytes and back; ``suffix`` is the file extension."""

    suffix: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


def _torch_dumps(value: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _torch_loads(payload: bytes) -> Any:
    import torch

    # weights_only: a stored file can hold tensors and plain containers, never code
    return torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")


STATE_DICT = Serializer("pt", _torch_dumps, _torch_loads)
JSON = Serializer("json", lambda v: json.dumps(v, sort_keys=True).encode(), json.loads)


# ---------------------------------------------------------------- provenance


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of what built an artifact (Python, torch, norse, the workbench)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in ("torch", "norse", "snn-latency-workbench"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout the package runs from, when it is one (None for a wheel)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# ---------------------------------------------------------------- the store

_REBUILT: ContextVar[set[Path] | None] = ContextVar("workbench_rebuilt", default=None)
_RESOLVED: dict[Path, Path] = {}  # relative path → file it was served from, in this process


@contextmanager
def rebuilding() -> Iterator[None]:
    """Inside this block every artifact is rebuilt into the user cache, once (later requests
    for the same key reuse the fresh build)."""
    token = _REBUILT.set(set())
    try:
        yield
    finally:
        _REBUILT.reset(token)


def _resolve(relative: Path) -> tuple[bytes, dict[str, Any]] | None:
    entry = read_entry(cache_dir() / relative)
    if entry is not None:
        _RESOLVED[relative] = cache_dir() / relative
        return entry
    shipped = shipped_dir() / relative
    entry = read_entry(shipped, remove_invalid=False)  # never delete files of the package
    if entry is not None:
        _RESOLVED[relative] = shipped
    return entry


def load_or_build(kind: str, setting: Any, build: Callable[[], tuple[Any, dict[str, Any]]],
                  serializer: Serializer = STATE_DICT, *, folder: str = "models",
                  seed: int | None = None, command: str = PREPARE,
                  meta: dict[str, Any] | None = None, rebuild: bool = False
                  ) -> tuple[Any, dict[str, Any]]:
    """The artifact ``kind`` for ``setting`` and its provenance record, from the user cache or
    the shipped artifacts when valid, else built, stored atomically and read back (see the
    module docstring)."""
    relative = Path(folder) / f"{kind}-{config_key(setting)}.{serializer.suffix}"
    rebuilt = _REBUILT.get()
    if not (rebuild or (rebuilt is not None and relative not in rebuilt)):
        entry = _resolve(relative)
        if entry is not None:
            return serializer.loads(entry[0]), entry[1]
    value, metrics = build()
    record = {"kind": kind, "key": config_key(setting), "config": _jsonable(setting), "seed": seed,
              "metrics": metrics, "command": command, "argv": [Path(sys.argv[0]).name, *sys.argv[1:]],
              "versions": versions(), "git_commit": git_commit(),
              "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              **(meta or {})}
    payload = serializer.dumps(value)
    record = write_entry(cache_dir() / relative, payload, record)
    _RESOLVED[relative] = cache_dir() / relative
    if rebuilt is not None:
        rebuilt.add(relative)
    return serializer.loads(payload), record


def export(folder: Path) -> list[Path]:
    """Copy every artifact resolved in this process (payload and sidecar, verified again) under
    ``folder`` with the store's layout; returns the payloads written. This is how the shipped
    artifacts are made: ``workbench prepare --retrain --export workbench/artifacts``."""
    written = []
    for relative, source in sorted(_RESOLVED.items()):
        if read_entry(source, remove_invalid=False) is None:
            raise WorkbenchError(f"cannot export {source}: it fails its recorded SHA-256")
        target = Path(folder) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
            shutil.copyfile(sidecar_path(source), sidecar_path(target))
        written.append(target)
    return written
