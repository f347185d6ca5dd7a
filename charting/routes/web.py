"""The chart page: ``/``, ``/config.json``, ``/static/...``.

``/static/vendor/lightweight-charts.js`` is TradingView's library from ``node_modules``
(``npm ci`` in ``charting/web``, which ``scripts/lib/node.sh``'s ``ensure_node_modules``
runs); without it that path answers 503 with what to run, and the page says so too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from charting.context import Context
from web.problems import ProblemError

log = logging.getLogger(__name__)

LIBRARY: Final = Path(
    "node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js"
)
_OWN_FILES: Final = {
    "mdp-chart.js": "text/javascript; charset=utf-8",
    "mdp-session.js": "text/javascript; charset=utf-8",
    "mdp-alerts.js": "text/javascript; charset=utf-8",
    "mdp-chart.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
ICON: Final = "favicon.svg"
"""The page links it; ``/favicon.ico`` answers it too (browsers ask there by themselves)."""


def library_path(web_dir: Path) -> Path:
    return web_dir / LIBRARY


def missing_library_message(web_dir: Path) -> str:
    return (
        f"the chart library is not installed: {library_path(web_dir)} is missing. Run"
        f" `npm ci` in {web_dir} (scripts/lib/node.sh: ensure_node_modules)"
    )


def routes(ctx: Context) -> list[BaseRoute]:
    web_dir = ctx.settings.web_dir
    if not library_path(web_dir).is_file():
        log.warning("%s", missing_library_message(web_dir))

    async def page(request: Request) -> Response:
        return FileResponse(web_dir / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})  # fmt: skip

    async def config(request: Request) -> Response:
        settings = ctx.settings
        body = {
            "ws_url": settings.ws_url,
            "api_base": settings.api_base,
            "intervals": [i.label for i in settings.intervals],
        }
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    async def own(request: Request) -> Response:
        name = str(request.path_params["name"])
        media = _OWN_FILES.get(name)
        if media is None:
            raise ProblemError(404, "not-found", "Not found", f"no static file {name!r}")
        return FileResponse(web_dir / name, media_type=media, headers={"Cache-Control": "no-cache"})

    async def icon(request: Request) -> Response:
        return FileResponse(web_dir / ICON, media_type=_OWN_FILES[ICON],
                            headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip

    async def library(request: Request) -> Response:
        path = library_path(web_dir)
        if not path.is_file():
            raise ProblemError(503, "chart-library-missing", "Chart library missing",
                          missing_library_message(web_dir))  # fmt: skip
        return FileResponse(path, media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip

    return [
        Route("/", page, methods=["GET"], name="chart_page"),
        Route("/config.json", config, methods=["GET"], name="chart_config"),
        Route("/favicon.ico", icon, methods=["GET"], name="favicon"),
        Route("/static/vendor/lightweight-charts.js", library, methods=["GET"], name="library"),
        Route("/static/{name}", own, methods=["GET"], name="static"),
    ]
