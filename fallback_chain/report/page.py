"""The HTML page: one self-contained file (inline CSS, JS, SVG charts and downscaled data-URI
thumbnails; nothing fetched from anywhere). Every string from the folder is HTML-escaped and
passed through :func:`fallback_chain.secrets.redact`, so markup in a prompt stays text and no
key-shaped token or registered key reaches the page."""

from __future__ import annotations

import os
import re
from html import escape
from typing import Any

from ..batch.storage import Storage
from ..secrets import redact, register_secret
from .assets import CSS, JS
from .charts import charts, provider_stats
from .load import BatchView, ReportItem, load_batch
from .thumbs import thumbnail_uri

#: The report's name in the output folder when ``--out`` is not given.
REPORT_NAME = "report.html"
#: Environment variables whose values are never printed (keys of any vendor, tokens...).
_SECRET_ENV = re.compile(r"(API_KEY|_KEY|TOKEN|SECRET|PASSWORD)$")


def _t(value: Any) -> str:
    """Text for the page: redacted, then escaped."""
    return escape(redact("" if value is None else str(value)))


def register_environment_secrets() -> None:
    """Mask the values of key-like environment variables wherever they would appear."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name.upper()):
            register_secret(value)


def build_report(storage: Storage, *, review: bool = False, title: str | None = None,
                 picked: frozenset[str] = frozenset()) -> str:
    """The HTML of the folder behind ``storage`` (``review`` adds the selection controls,
    with the ids in ``picked`` ticked)."""
    register_environment_secrets()
    view = load_batch(storage)
    return render(view, storage, review=review, title=title, picked=picked)


def write_report(storage: Storage, out: str | None = None) -> str:
    """Build the report and write it to ``out`` (a local path) or, by default, to
    ``report.html`` in the folder; returns where it went."""
    html = build_report(storage).encode("utf-8")
    if out is None:
        storage.write_sync(html, REPORT_NAME)
        return storage.display(REPORT_NAME)
    with open(out, "wb") as fh:
        fh.write(html)
    return out


def render(view: BatchView, storage: Storage, *, review: bool = False,
           title: str | None = None, picked: frozenset[str] = frozenset()) -> str:
    heading = title or f"Batch report: {view.location}"
    cards = "".join(_card(item, storage, review, item.id in picked)
                    for item in view.delivered)
    rows = "".join(_failure_row(item) for item in view.not_delivered)
    stats = provider_stats(a for item in view.items for a in item.attempts)
    body = [
        f"<header><h1>{_t(heading)}</h1>{_summary(view)}</header>",
        _filters(view, review),
        f'<section id="charts"><h2>Spend and latency</h2>{charts(stats)}</section>',
        f'<section><h2>Delivered <span class="count" id="shown-count"></span></h2>'
        f'<div id="grid" class="grid">{cards}</div></section>',
        '<section id="failures"><h2>Refused and failed</h2>'
        + (f'<table class="failures"><thead><tr><th>Item</th><th>Outcome</th>'
           f"<th>Provider</th><th>Reason</th><th>Prompt</th><th>Cost</th></tr></thead>"
           f"<tbody>{rows}</tbody></table>" if rows else '<p class="muted">None.</p>')
        + "</section>",
    ]
    script = JS
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
            "connect-src 'self'\">"
            f"<title>{_t(heading)}</title><style>{CSS}</style></head>"
            f'<body class="{"review" if review else "report"}">{"".join(body)}'
            f"<script>{script}</script></body></html>\n")


def _summary(view: BatchView) -> str:
    counts: dict[str, int] = {}
    for item in view.items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    spent = sum(item.cost_usd for item in view.items)
    facts = [("items", len(view.items)), *sorted(counts.items()),
             ("spent", f"${spent:.4f}")]
    if view.run.get("chain"):
        facts.append(("chain", view.run["chain"]))
    if view.run.get("run"):
        facts.append(("run", view.run["run"]))
    return '<dl class="summary">' + "".join(
        f"<div><dt>{_t(k)}</dt><dd>{_t(v)}</dd></div>" for k, v in facts) + "</dl>"


def _filters(view: BatchView, review: bool) -> str:
    groups: list[tuple[str, list[str | None]]] = [
              ("outcome", [i.outcome for i in view.items]),
              ("provider", [i.provider for i in view.items]),
              ("model", [i.model for i in view.items]),
              ("tenant", [i.tenant for i in view.items])]
    html = ['<nav id="filters">']
    for name, values in groups:
        present = sorted({v for v in values if v})
        if not present:
            continue
        chips = "".join(f'<button type="button" class="chip" data-filter="{name}" '
                        f'data-value="{_t(v)}">{_t(v)}</button>' for v in present)
        html.append(f'<div class="filter-group" data-group="{name}"><span>{name}</span>'
                    f"{chips}</div>")
    if review:
        html.append('<div class="review-bar"><span id="selected-count">0 selected</span>'
                    '<button type="button" id="save">Save selection</button>'
                    '<span id="save-status" role="status"></span>'
                    '<span class="muted">arrows move · space ticks · enter opens · '
                    "s saves</span></div>")
    html.append("</nav>")
    return "".join(html)


def _data_attrs(item: ReportItem) -> str:
    return (f'data-id="{_t(item.id)}" data-outcome="{_t(item.outcome)}" '
            f'data-provider="{_t(item.provider or "")}" data-model="{_t(item.model or "")}" '
            f'data-tenant="{_t(item.tenant or "")}"')


def _thumbs(item: ReportItem, storage: Storage) -> str:
    out = []
    for name in item.files[:4]:
        try:
            uri = thumbnail_uri(storage.read_sync(*name.split("/")))
        except (OSError, ValueError):
            uri = None
        if uri is None:
            out.append(f'<div class="missing">{_t(name)}: unreadable</div>')
        else:
            out.append(f'<img loading="lazy" decoding="async" src="{uri}" '
                       f'alt="{_t(item.id)}" title="{_t(name)}">')
    return "".join(out)


def _attempts(item: ReportItem) -> str:
    if not item.attempts:
        if item.shared_from:
            return f'<p class="muted">Copied from {_t(item.shared_from)}: no call.</p>'
        return ""
    rows = "".join(
        f'<tr class="attempt {_t(a.get("outcome"))}"><td>{_t(a.get("provider"))}</td>'
        f'<td>{_t(a.get("model"))}</td><td>{_t(a.get("outcome"))}</td>'
        f'<td>{_num(a.get("latency_s"), ".2f", "s")}</td>'
        f'<td>{_num(a.get("cost_usd"), ".4f", "", "$")}</td>'
        f'<td>{_t(a.get("message") or "")}</td></tr>' for a in item.attempts)
    return ('<table class="attempts"><thead><tr><th>provider</th><th>model</th><th>outcome</th>'
            f"<th>latency</th><th>cost</th><th>message</th></tr></thead><tbody>{rows}</tbody>"
            "</table>")


def _num(value: Any, fmt: str, unit: str, prefix: str = "") -> str:
    if value is None:
        return ""
    try:
        return f"{prefix}{float(value):{fmt}}{unit}"
    except (TypeError, ValueError):
        return _t(value)


def _card(item: ReportItem, storage: Storage, review: bool, picked: bool) -> str:
    tick = (f'<label class="tick"><input type="checkbox" class="pick" '
            f'aria-label="select {_t(item.id)}"> select</label>' if review else "")
    revised = (f'<p><b>revised:</b> <span class="revised">{_t(item.revised_prompt)}</span></p>'
               if item.revised_prompt else "")
    tenant = f" · {_t(item.tenant)}" if item.tenant else ""
    mark = ' data-picked="1"' if picked else ""
    return (f'<article class="item card" tabindex="0" {_data_attrs(item)}{mark}>'
            f'<div class="thumbs">{_thumbs(item, storage)}</div>'
            f'<div class="meta"><b class="id">{_t(item.id)}</b> {tick}<br>'
            f'<span class="prov">{_t(item.provider)} · {_t(item.model)}</span>{tenant}<br>'
            f'{_t(item.outcome)} · {_num(item.cost_usd, ".4f", "", "$")} · '
            f'{_num(item.latency_s, ".2f", "s")}</div>'
            f'<p class="prompt">{_t(item.prompt)}</p>'
            f"<details><summary>details</summary>{revised}"
            f'<p><b>size:</b> {_t(item.size)} · <b>files:</b> {_t(", ".join(item.files))}</p>'
            f"{_attempts(item)}</details></article>")


def _failure_row(item: ReportItem) -> str:
    return (f'<tr class="item failure" {_data_attrs(item)}><td>{_t(item.id)}</td>'
            f'<td>{_t(item.outcome)}</td><td>{_t(item.provider or "")}</td>'
            f'<td class="reason">{_t(item.reason or "")}<br><small>{_t(item.error or "")}'
            f'</small><details><summary>attempts</summary>{_attempts(item)}</details></td>'
            f'<td class="prompt">{_t(item.prompt or "")}</td>'
            f'<td>{_num(item.cost_usd, ".4f", "", "$")}</td></tr>')
