"""The wheel carries what an installed tool needs: the energy profiles, the shipped models with
their sidecars, the declared dependencies."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_data_and_default_models(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = {line.split(": ", 1)[1].replace(" ", "")
                    for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert "workbench/data/energy_profiles.toml" in names
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "workbench" / "artifacts").rglob("*")
               if p.is_file()}
    assert any(n.endswith(".pt") for n in shipped) and shipped <= names
    assert {"torch==2.13.0", "norse==1.1.0", "platformdirs>=3"} <= requires
    assert not any(n.startswith(("tests/", "notebooks/", "data/")) for n in names)
