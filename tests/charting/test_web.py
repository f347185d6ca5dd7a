"""The chart page's files, its configuration, and a clear message without ``npm ci``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from charting.settings import WEB_DIR
from tests.charting.conftest import MakeClient


async def test_the_page_its_files_and_its_configuration(make_client: MakeClient) -> None:
    client = make_client(ws_url="ws://{host}:8765/ws", api_base="")
    page = await client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="static/mdp-chart.js"' in page.text
    script = await client.get("/static/mdp-chart.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "MdpChart" in script.text
    assert (
        (await client.get("/static/mdp-chart.css")).headers["content-type"].startswith("text/css")
    )
    assert (await client.get("/static/package.json")).status_code == 404
    config = (await client.get("/config.json")).json()
    assert config["ws_url"] == "ws://{host}:8765/ws"
    assert config["api_base"] == ""


async def test_the_page_has_an_icon_and_favicon_ico_answers_it(make_client: MakeClient) -> None:
    client = make_client()
    page = await client.get("/")
    assert '<link rel="icon" type="image/svg+xml" href="static/favicon.svg">' in page.text
    linked = await client.get("/static/favicon.svg")
    asked = await client.get("/favicon.ico")
    for icon in (linked, asked):
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/svg+xml"
        assert icon.text.startswith("<svg")


async def test_without_npm_ci_the_library_path_says_what_to_run(
    make_client: MakeClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = tmp_path / "web"
    bare.mkdir()
    for name in ("index.html", "mdp-chart.js", "mdp-chart.css"):
        shutil.copy(WEB_DIR / name, bare / name)
    client = make_client(web_dir=bare)
    assert "npm ci" in caplog.text
    missing = await client.get("/static/vendor/lightweight-charts.js")
    assert missing.status_code == 503
    assert missing.headers["content-type"] == "application/problem+json"
    assert "npm ci" in missing.json()["detail"]
    assert (await client.get("/")).status_code == 200
