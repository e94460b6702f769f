"""Every study, by name: ``workbench prepare``, ``workbench report NAME``, the dashboard and
exploration sessions loop over this. A new method is one module and one line here."""

from __future__ import annotations

from workbench.methods import (
    basics_study,
    early_exit_study,
    hybrid_study,
    iir_deep_study,
    iir_study,
    msat_study,
    rcs_study,
)
from workbench.study import Study

STUDIES: dict[str, Study] = {s.name: s for s in (
    basics_study.BASICS,
    basics_study.ENERGY,
    early_exit_study.STUDY,
    rcs_study.STUDY,
    msat_study.STUDY,
    iir_study.STUDY,
    iir_deep_study.STUDY,
    hybrid_study.STUDY,
)}
