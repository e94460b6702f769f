"""Files the workbench generates (datasets, models), written atomically and verified on load.

Every payload ``<name>.<ext>`` has a sidecar ``<name>.<ext>.meta.json`` holding its SHA-256,
size and metadata. Writes go to a temporary file that is renamed into place, payload first and
sidecar last, so a crash leaves either the old complete entry or an entry without a valid
sidecar. A payload whose hash does not match (truncated, tampered, half-written) is reported
as missing and rebuilt; it is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

ENV_VAR = "WORKBENCH_CACHE"


def cache_dir() -> Path:
    """The cache folder: ``$WORKBENCH_CACHE`` or ``data/cache`` of the repository."""
    root = os.environ.get(ENV_VAR)
    path = Path(root) if root else Path(__file__).resolve().parents[1] / "data" / "cache"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot create cache folder {path} ({exc}); set {ENV_VAR} to a "
                             "writable folder") from None
    return path


def config_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able configuration (the cache key)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def write_entry(path: Path, payload: bytes, meta: dict[str, Any]) -> None:
    """Store ``payload`` at ``path`` with its sidecar (hash + ``meta``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, payload)
    sidecar = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), **meta}
    _write_atomic(sidecar_path(path), json.dumps(sidecar, indent=2, default=str).encode())


def read_entry(path: Path) -> tuple[bytes, dict[str, Any]] | None:
    """The verified payload and metadata at ``path``, or None when absent or invalid (an invalid
    entry is removed with a warning, so the caller rebuilds it)."""
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
        warnings.warn(f"cache entry {path} is corrupt or half-written; rebuilding it",
                      stacklevel=2)
        path.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        return None
    return payload, meta
