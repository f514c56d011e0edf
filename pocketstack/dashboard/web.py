"""The templates and the form parsing the pages share."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pocketstack.dashboard.session import UserSession

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())
def render(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    session: UserSession | None = request.scope.get("dashboard_session")
    html = TEMPLATES.get_template(name).render(session=session, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


async def form(request: Request) -> dict[str, list[str]]:
    return parse_qs((await request.body()).decode(), keep_blank_values=True)


def first(data: dict[str, list[str]], key: str, default: str = "") -> str:
    return (data.get(key) or [default])[0]


