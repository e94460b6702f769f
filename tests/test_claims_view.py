"""The claims card of the dashboard pages (widgets.claims_view), in-process: every claim of a
page's studies with the mean and interval that workbench.claims computes from the stored
results, the command and commit that made them, a line saying how to make results that are
missing, no NaN drawn, a results file read once per version, and every study with claims shown
on some page."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import panel as pn
import param
import pytest
from bokeh.document import Document

from widgets import claims_view
from widgets.page import Page
from workbench.claims import load_claims, verdicts
from workbench.methods.registry import STUDIES
from workbench.reproduce import command, load_results

CLAIMED = sorted({c.study for c in load_claims()} & set(STUDIES))
SHIPPED = Path(__file__).parents[1] / "workbench" / "data" / "results"


class NoKnobs(param.Parameterized):
    pass


def claims_page(name: str) -> Page:
    """A page of study ``name`` with nothing but the skeleton (the real pages need models)."""

    class ClaimsPage(Page):
        title = f"claims of {name}"
        settings_class = NoKnobs
        study = name

        def __panel__(self):
            return self.frame(pn.Param(self.settings))

    return ClaimsPage()


def card_of(page: Page) -> pn.Card | None:
    cards = pn.panel(page).select(pn.Card)
    assert len(cards) <= 1
    return cards[0] if cards else None


def html(pane: pn.pane.DataFrame) -> str:
    return pane.get_root(Document()).text


@pytest.fixture(autouse=True)
def fresh_cache():
    claims_view.stored_claims.cache_clear()
    yield
    claims_view.stored_claims.cache_clear()


@pytest.mark.parametrize("name", CLAIMED)
def test_the_card_lists_every_claim_with_the_interval_of_the_stored_seeds(name, monkeypatch):
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)  # the committed results
    results = load_results(name)
    found = verdicts(name, results.table, kind=results.seed_kind)
    card = card_of(claims_page(name))
    assert card is not None and card.collapsed
    [origin] = card.select(pn.pane.Markdown)
    assert f"`{results.meta['command']}`" in origin.object
    assert results.meta["provenance"]["git_commit"][:7] in origin.object
    [pane] = card.select(pn.pane.DataFrame)
    table = pane.object
    assert len(table) == len(found) > 0
    assert list(table["verdict"]) == [v.verdict for v in found]
    for (_, row), v in zip(table.iterrows(), found, strict=True):
        scale = v.claim.scale
        assert row["claim"].startswith(v.claim.statement)
        assert np.allclose(row[list(claims_view.NUMBERS)].to_numpy(float),
                           [v.interval.mean * scale, v.interval.low * scale,
                            v.interval.high * scale])
        assert row["seeds"] == v.seeds_text() and row["unit"] == v.claim.unit
    drawn = html(pane)
    for v in found:
        assert f"{v.interval.low * v.claim.scale:+.3g}" in drawn
        assert f"{v.interval.high * v.claim.scale:+.3g}" in drawn
    assert "NaN" not in drawn and "nan" not in drawn
    tally = {verdict: sum(v.verdict == verdict for v in found) for verdict in table["verdict"]}
    assert all(f"{n} {verdict}" in card.title for verdict, n in tally.items())


def test_without_stored_results_the_card_says_how_to_make_them(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_RESULTS", str(tmp_path))  # an empty results folder
    card = card_of(claims_page("iir"))
    assert card.title == "Paper claims over the stored seeds: no stored results"
    assert not card.select(pn.pane.DataFrame)
    [origin] = card.select(pn.pane.Markdown)
    assert f"`{command('iir')}`" in origin.object and "no stored results" in origin.object


def test_a_claim_that_is_not_comparable_draws_a_dash_not_nan(monkeypatch, tmp_path):
    stored = json.loads((SHIPPED / "msat.json").read_text())
    stored["rows"] = [r for r in stored["rows"] if r["mode"] != "MSAT + spike confidence"]
    (tmp_path / "msat.json").write_text(json.dumps(stored))
    monkeypatch.setenv("WORKBENCH_RESULTS", str(tmp_path))
    [pane] = card_of(claims_page("msat")).select(pn.pane.DataFrame)
    [gated] = [c.statement for c in load_claims() if c.id == "msat-spike-confidence"]
    table = pane.object.set_index("claim")
    assert table.at[gated, "verdict"] == "not comparable"
    assert (table.drop(index=gated)["verdict"] != "not comparable").all()
    drawn = html(pane)
    assert "—" in drawn and "NaN" not in drawn and "nan" not in drawn


def test_a_results_file_is_read_once_per_version(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_RESULTS", str(tmp_path))
    reads = []
    monkeypatch.setattr(claims_view, "load_results",
                        lambda name: reads.append(name) or load_results(name))
    assert card_of(claims_page("iir")).title.endswith("no stored results")
    (tmp_path / "iir.json").write_bytes(SHIPPED.joinpath("iir.json").read_bytes())
    for _ in range(3):  # three sessions of the page, after `workbench reproduce iir`
        assert "reproduced" in card_of(claims_page("iir")).title
    assert reads == ["iir"]
    stored = json.loads((tmp_path / "iir.json").read_text())
    stored["rows"] = [r for r in stored["rows"] if r["seed"] == 0]  # a new version, one seed
    (tmp_path / "iir.json").write_text(json.dumps(stored))
    os.utime(tmp_path / "iir.json", ns=(0, 10**18))  # a later time than the first write
    assert "too few seeds" in card_of(claims_page("iir")).title
    assert reads == ["iir", "iir"]


def test_a_page_without_claims_has_no_card():
    assert not any(c.study == "basics" for c in load_claims())
    assert card_of(claims_page("basics")) is None


def test_every_study_with_claims_is_shown_on_a_page():
    from widgets.app import PAGES

    shown = {name for page in PAGES.values() for name in page.claim_studies()}
    assert set(CLAIMED) <= shown, f"claims of {set(CLAIMED) - shown} are on no page"


def test_related_studies_show_once_registered(monkeypatch):
    from widgets.pages.iir import IIRPage

    monkeypatch.delitem(STUDIES, "iir-deep", raising=False)
    assert IIRPage.claim_studies() == ("iir",)
    monkeypatch.setitem(STUDIES, "iir-deep", STUDIES["iir"])
    assert IIRPage.claim_studies() == ("iir", "iir-deep")



def test_notebooks_get_the_cards_numbers(monkeypatch):
    monkeypatch.delenv("WORKBENCH_RESULTS", raising=False)
    stored = claims_view.stored_verdicts("iir")
    [pane] = card_of(claims_page("iir")).select(pn.pane.DataFrame)
    drawn, styled = html(pane), stored.styled().to_html()
    for value in stored.table[list(claims_view.NUMBERS)].to_numpy().ravel():
        assert f"{value:+.3g}" in drawn and f"{value:+.3g}" in styled
