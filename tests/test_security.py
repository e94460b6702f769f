"""Security of the served dashboard: it listens on loopback unless told otherwise, URL
parameters can neither choose a model source nor hand a page a filesystem path, and every page,
as served, references no host but the server (it works offline)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import sys
import urllib.request
from urllib.parse import quote, urljoin, urlparse

import panel as pn
import param
import pytest

import widgets.app
from widgets.app import PAGES
from widgets.browser import served_app
from widgets.url_settings import settings_from_url
from workbench.cli import main

URL = re.compile(r"""(?:https?:)?//[^\s"'<>),\\]+""")
RESOURCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')\s]+)""")
SETTINGS = [page.settings_class for page in PAGES.values() if hasattr(page, "settings_class")]


def test_serve_listens_on_loopback_by_default(monkeypatch):
    calls = []
    monkeypatch.setattr(widgets.app, "serve", lambda **kwargs: calls.append(kwargs))
    assert main(["serve", "--no-prepare", "--port", "0"]) == 0
    assert calls[0]["address"] == "127.0.0.1" and calls[0]["allowed_origins"] == ()
    assert calls[0]["model"] is None  # and no model source unless the command line names one


def test_page_settings_a_url_may_set_hold_no_text_or_paths():
    """A URL parameter only sets a page setting through its declared type: numbers, booleans
    and fixed choices; no page has a setting a path or a module name could go into."""
    allowed = (param.Number, param.Boolean, param.Selector)
    for settings in SETTINGS:
        for name, p in settings.param.objects().items():
            if name != "name":
                assert isinstance(p, allowed), f"{settings.__name__}.{name}: {type(p).__name__}"
                if isinstance(p, param.Selector):
                    assert all(not isinstance(o, str) or "/" not in o for o in p.objects)


def test_paths_and_sources_in_the_url_are_never_read(tmp_path, monkeypatch):
    secret = tmp_path / "secret.nir"
    secret.write_text("not for the browser")
    seen = []

    def audit(event: str, args: tuple) -> None:
        if event in ("open", "os.listdir", "os.scandir") and args and str(secret) in str(args[0]):
            seen.append(event)

    sys.addaudithook(audit)  # (hooks stay for the process: this one only looks at `secret`)
    given = []

    def stub(title: str, settings_class):
        """The page ``title``, recording the settings it is opened with."""
        def page(**settings):
            given.append(settings)
            return pn.pane.Markdown(title)
        page.settings_class = settings_class
        return page

    stub_pages = {name: stub(name, getattr(page, "settings_class", None))
                  for name, page in PAGES.items()}
    monkeypatch.setattr(widgets.app, "PAGES", stub_pages)
    for name, settings in [(n, getattr(p, "settings_class", None)) for n, p in PAGES.items()]:
        names = list(settings.param) if settings else []
        arguments = {key: [str(secret).encode()] for key in
                     [*names, "model", "data", "source", "path", "file", "storage", "folder"]}
        arguments["page"] = [name.encode()]
        monkeypatch.setattr(type(pn.state), "session_args", property(lambda self, a=arguments: a))
        widgets.app.create_app()
        for settings_class in SETTINGS:
            assert settings_from_url(settings_class, arguments) == {}
    assert given and all(str(secret) not in json.dumps(kw, default=str) for kw in given)
    assert not seen, f"a page read {secret}: {seen}"


# ------------------------------------------------------------------ the served app, offline


@pytest.fixture(scope="module")
def app_url():
    with served_app("--no-prepare") as url:
        yield url


def served_document(url: str, page: str) -> tuple[str, str]:
    """The HTML of ``page`` and, as JSON, the Bokeh document of the session that request
    opened (what the browser receives over the websocket)."""
    import panel.models
    from bokeh.client import pull_session
    from bokeh.util.token import get_session_id

    for module in pkgutil.iter_modules(panel.models.__path__):  # to read the document back
        importlib.import_module(f"panel.models.{module.name}")
    html = urllib.request.urlopen(f"{url}?page={quote(page)}", timeout=300).read().decode()
    token = re.search(r'"token":\s*"([^"]+)"', html)
    assert token, "the page carries its session's token"
    with pull_session(url=url, session_id=get_session_id(token.group(1))) as session:
        document = json.dumps(session.document.to_json(), default=str)
    return html, document


def foreign(urls, server: str) -> list[str]:
    """The URLs that point anywhere but ``server`` (relative ones stay on it)."""
    return sorted({u for u in urls if urlparse(urljoin(server, u)).netloc
                   not in (urlparse(server).netloc, "")})


@pytest.mark.parametrize("page", list(PAGES))
def test_a_served_page_loads_nothing_from_another_host(app_url, page):
    html, document = served_document(app_url, page)
    resources = [a or b for a, b in RESOURCE.findall(html)]
    assert resources, "the page loads its scripts and styles"
    assert not foreign(resources, app_url)
    assert not foreign(URL.findall(document), app_url)  # stylesheets, images, scripts of models
    for css in [r for r in resources if urlparse(r).path.endswith(".css")]:
        text = urllib.request.urlopen(urljoin(app_url, css), timeout=60).read().decode()
        imported = [a or b for a, b in RESOURCE.findall(text)] + re.findall(
            r"""@import\s+["']([^"']+)""", text)
        assert not foreign([u for u in imported if not u.startswith("data:")], app_url), css
