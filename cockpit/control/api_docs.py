"""The control API's OpenAPI page at /docs, rendered on the server from the app's own schema.

FastAPI's default page loads Swagger UI from a CDN: on a trading box with no internet it is
blank, and the rule here is no CDN. This page needs no script: each route with its method,
summary, parameters, request body and answers, linking to /openapi.json for tools.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em;max-width:60em;color:#222}}
code{{background:#f3f3f3;padding:0 .25em}}h2{{font-size:1em;margin:1.2em 0 .3em}}
.m{{display:inline-block;min-width:3.5em;font-weight:bold}}.get{{color:#1a6}}.post{{color:#a51}}
td,th{{text-align:left;padding:.1em .6em .1em 0;vertical-align:top}}</style></head><body>
<h1>{title} <small>{version}</small></h1>
<p>The machine-readable schema is <a href="/openapi.json"><code>/openapi.json</code></a>. On TCP
every path needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>{routes}</body></html>"""


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else str(schema.get("type", ""))


def render(schema: dict[str, Any]) -> str:
    parts = []
    for path, methods in sorted(schema.get("paths", {}).items()):
        for method, op in sorted(methods.items()):
            params = "".join(
                f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{html.escape(p.get('in', ''))}</td>"
                f"<td>{html.escape(_ref_name(p.get('schema', {})))}</td>"
                f"<td>{'required' if p.get('required') else ''}</td></tr>" for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            answers = ", ".join(f"{html.escape(code)} {html.escape(r.get('description', ''))}"
                                for code, r in sorted(op.get("responses", {}).items()))
            parts.append(
                f"<h2><span class='m {method}'>{method.upper()}</span> <code>{html.escape(path)}</code> "
                f"{html.escape(op.get('summary', ''))}</h2>"
                + (f"<table>{params}</table>" if params else "")
                + (f"<div>body: <code>{html.escape(_ref_name(body))}</code></div>" if body else "")
                + f"<div>answers: {answers}</div>")
    return _PAGE.format(title=html.escape(schema.get("info", {}).get("title", "API")),
                        version=html.escape(str(schema.get("info", {}).get("version", ""))), routes="".join(parts))


def add_docs_page(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(render(app.openapi()))
