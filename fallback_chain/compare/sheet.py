"""``render_contact_sheet``: one PNG with every run of a comparison, labelled.

Layout: a header with the prompt and the request; then one row per provider (left: its name,
model and figures) and one column per run. Each cell is the image's thumbnail, or a red
"failed" tile naming the outcome, over a caption: provider and model, run, cost, latency.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .decode import decoded
from .tables import secs, usd
from .text import fit, font, wrap

if TYPE_CHECKING:
    from PIL import Image, ImageDraw

    from .model import Cell, Comparison, Row
    from .stats import ProviderStats

BACKGROUND = (255, 255, 255)
INK = (34, 34, 34)
MUTED = (110, 110, 110)
TILE = (236, 236, 236)
CHECKER = (214, 214, 214)
FAIL_FILL = (253, 232, 232)
FAIL_EDGE = (200, 40, 40)
FAIL_INK = (160, 20, 20)
RULE = (220, 220, 220)
LEGEND = ("Latency p50/p95 over delivered runs; cost includes failed attempts. Spread: mean "
          "difference between a provider's runs as 32x32 greyscale thumbnails (0 = alike, "
          "1 = black vs white).")


@dataclass(frozen=True, slots=True)
class Layout:
    """Pixel geometry, all derived from the thumbnail size."""

    thumb: int
    pad: int
    text: int
    line: int
    label_w: int
    caption_h: int
    colhead_h: int

    @classmethod
    def for_thumb(cls, thumb: int) -> Layout:
        text = max(11, round(thumb / 18))
        line = round(text * 1.35)
        pad = max(8, thumb // 20)
        return cls(thumb, pad, text, line, max(200, round(thumb * 0.95)), 3 * line + pad // 2,
                   line + pad // 2)

    @property
    def cell_w(self) -> int:
        return self.thumb + self.pad

    @property
    def row_h(self) -> int:
        return self.thumb + self.caption_h + self.pad


@dataclass(frozen=True, slots=True)
class SheetPlan:
    """Where everything goes on one sheet: size, header lines, and the grid's origin."""

    layout: Layout
    header: list[tuple[str, int, int]]  # (text, font size, line height)
    width: int
    height: int
    grid_x: int
    grid_y: int
    footer_y: int

    def cell_box(self, row: int, run: int) -> tuple[int, int, int, int]:
        """The image tile of ``row`` (0-based) and ``run`` (1-based): ``(x0, y0, x1, y1)``,
        inclusive; the caption is below it."""
        lay = self.layout
        x = self.grid_x + (run - 1) * lay.cell_w
        y = self.grid_y + row * lay.row_h
        return x, y, x + lay.thumb - 1, y + lay.thumb - 1


def plan_sheet(comparison: Comparison, thumb_px: int = 256) -> SheetPlan:
    """The geometry :func:`render_contact_sheet` draws with (tests use it to find tiles)."""
    from PIL import Image, ImageDraw

    if not 48 <= thumb_px <= 1024:
        raise ValueError(f"thumb_px must be between 48 and 1024 (got {thumb_px})")
    lay = Layout.for_thumb(thumb_px)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    grid_x = lay.pad + lay.label_w + lay.pad
    width = grid_x + comparison.runs * lay.cell_w
    header = _header_lines(comparison, probe, lay, width - 2 * lay.pad)
    grid_y = lay.pad + sum(h for _, _, h in header) + lay.pad + lay.colhead_h
    footer_y = grid_y + len(comparison.rows) * lay.row_h
    return SheetPlan(lay, header, width, footer_y + lay.line + lay.pad, grid_x, grid_y,
                     footer_y)


def render_contact_sheet(comparison: Comparison, path: str | os.PathLike[str], *,
                         thumb_px: int = 256) -> Path:
    """Draw ``comparison`` as a labelled grid and write it as PNG to ``path`` (atomically:
    a temporary file, then a rename). Returns the path (``.png`` is added when ``path`` has
    no suffix; another suffix is a ``ValueError``).

    The grid has one row per provider and one column per run; each cell is ``thumb_px``
    square (48–1024; the image fitted inside, aspect kept) with a three-line caption below
    it: provider and model, run, cost and latency, then the delivered size or the failure.
    A failed run is a red tile naming the outcome and the provider's message. Text uses
    Pillow's bundled default font, so nothing is downloaded.
    """
    from PIL import Image, ImageDraw

    plan = plan_sheet(comparison, thumb_px)
    lay = plan.layout
    sheet = Image.new("RGB", (plan.width, plan.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = lay.pad
    for text, size, h in plan.header:
        draw.text((lay.pad, y), text, fill=INK if size > lay.text else MUTED, font=font(size))
        y += h
    for run in range(1, comparison.runs + 1):
        x = plan.grid_x + (run - 1) * lay.cell_w
        draw.text((x + lay.thumb // 2, plan.grid_y - lay.colhead_h // 2), f"run {run}",
                  fill=MUTED, font=font(lay.text), anchor="mm")
    for row, figures in zip(comparison.rows, comparison.stats(), strict=True):
        _rule(draw, plan, plan.grid_y + row.index * lay.row_h)
        _row_label(draw, row, figures, lay, plan.grid_y + row.index * lay.row_h)
        for cell in row.cells:
            x, top, _, _ = plan.cell_box(row.index, cell.run)
            _cell(sheet, draw, cell, lay, x, top)
    _rule(draw, plan, plan.footer_y)
    draw.text((lay.pad, plan.footer_y),
              fit(draw, LEGEND, font(lay.text), plan.width - 2 * lay.pad), fill=MUTED,
              font=font(lay.text))
    return _save(sheet, Path(path))


def _rule(draw: ImageDraw.ImageDraw, plan: SheetPlan, top: int) -> None:
    pad = plan.layout.pad
    draw.line([(pad, top - pad // 2), (plan.width - pad, top - pad // 2)], fill=RULE, width=1)


def _header_lines(comparison: Comparison, draw: ImageDraw.ImageDraw, lay: Layout,
                  max_w: int) -> list[tuple[str, int, int]]:
    """(text, font size, line height) of the header: the prompt, then the request."""
    big = round(lay.text * 1.45)
    req = comparison.request
    prompt = wrap(draw, f"“{comparison.prompt}”", font(big), max_w, 3)
    lines = [(t, big, round(big * 1.35)) for t in prompt]
    when = comparison.started_at.strftime("%Y-%m-%d %H:%M UTC")
    detail = (f"{len(comparison.rows)} provider(s) x {comparison.runs} run(s) · size {req.size}"
              f" · quality {req.quality} · n {req.n} · spent ${comparison.cost_usd:.4f}"
              f" · {when}")
    lines.append((fit(draw, detail, font(lay.text), max_w), lay.text, lay.line))
    return lines


def _row_label(draw: ImageDraw.ImageDraw, row: Row, s: ProviderStats, lay: Layout,
               top: int) -> None:
    x, w = lay.pad, lay.label_w
    big = round(lay.text * 1.25)
    draw.text((x, top), fit(draw, row.label, font(big), w), fill=INK, font=font(big))
    y = top + round(big * 1.4)
    lines = [
        (row.model, MUTED),
        (f"{s.delivered}/{s.runs} delivered", INK if not s.failed else FAIL_INK),
        (f"p50 {secs(s.latency_p50_s)} · p95 {secs(s.latency_p95_s)}", INK),
        (f"${s.cost_usd:.4f} total", INK),
        (f"{usd(s.cost_per_image_usd)} per image" if s.cost_per_image_usd is not None
         else "no image delivered", INK),
        (f"spread {s.spread:.3f}" if s.spread is not None else "spread -", MUTED),
    ]
    for text, colour in lines:
        if y + lay.line > top + lay.row_h - lay.pad:
            break
        draw.text((x, y), fit(draw, text, font(lay.text), w), fill=colour, font=font(lay.text))
        y += lay.line


def _cell(sheet: Image.Image, draw: ImageDraw.ImageDraw, cell: Cell, lay: Layout, x: int,
          top: int) -> None:
    t = lay.thumb
    image = cell.image
    thumb = _thumbnail(image.data, t) if image is not None else None
    if thumb is not None:
        draw.rectangle([x, top, x + t - 1, top + t - 1], fill=TILE)
        if thumb.mode == "RGBA":
            _checker(draw, x, top, t, max(8, t // 16))
        ox, oy = x + (t - thumb.width) // 2, top + (t - thumb.height) // 2
        sheet.paste(thumb, (ox, oy), thumb if thumb.mode == "RGBA" else None)
        tail = f"{image.width}x{image.height} {image.extension.lstrip('.')}" if image else ""
        tail_colour = MUTED
    else:
        _failed_tile(draw, cell, lay, x, top, undecodable=image is not None)
        tail = f"failed: {cell.outcome}" + (f" ({cell.calls} calls)" if cell.calls > 1 else "")
        tail_colour = FAIL_INK
    face = font(lay.text)
    y = top + t + lay.pad // 3
    caption = [
        (f"{cell.label} · {cell.model}" if cell.model not in cell.label else cell.label, INK),
        (f"run {cell.run} · {usd(cell.cost_usd)} · {secs(cell.latency_s)}", INK),
        (tail, tail_colour),
    ]
    for text, colour in caption:
        draw.text((x, y), fit(draw, text, face, t), fill=colour, font=face)
        y += lay.line


def _failed_tile(draw: ImageDraw.ImageDraw, cell: Cell, lay: Layout, x: int, top: int, *,
                 undecodable: bool) -> None:
    t = lay.thumb
    edge = max(2, t // 64)
    draw.rectangle([x, top, x + t - 1, top + t - 1], fill=FAIL_FILL, outline=FAIL_EDGE,
                   width=edge)
    inner = t - 2 * lay.pad
    size = round(lay.text * 1.6)
    while size > lay.text and draw.textlength("FAILED", font=font(size)) > inner:
        size -= 1
    big = font(size)
    y = top + lay.pad
    draw.text((x + t // 2, y), "FAILED", fill=FAIL_INK, font=big, anchor="mt")
    y += round(lay.text * 2.4)
    outcome = "image could not be decoded" if undecodable else cell.outcome
    draw.text((x + t // 2, y), fit(draw, outcome, font(lay.text), inner), fill=FAIL_INK,
              font=font(lay.text), anchor="mt")
    y += lay.line + lay.pad // 2
    room = max(0, (top + t - lay.pad - y) // lay.line)
    small = font(max(10, lay.text - 2))
    for text in wrap(draw, cell.message or "", small, inner, room):
        draw.text((x + lay.pad, y), text, fill=INK, font=small)
        y += lay.line


def _thumbnail(data: bytes, size: int) -> Image.Image | None:
    from PIL import Image

    out = decoded(data, draft=("RGB", size), mode=_sheet_mode)
    if out is None:
        return None
    out.thumbnail((size, size), Image.Resampling.LANCZOS)
    return out


def _sheet_mode(img: Image.Image) -> str:
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    return "RGBA" if has_alpha else "RGB"


def _checker(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, step: int) -> None:
    for j in range(0, size, step):
        for i in range((j // step) % 2 * step, size, 2 * step):
            draw.rectangle([x + i, y + j, x + min(i + step, size) - 1,
                            y + min(j + step, size) - 1], fill=CHECKER)


def _save(sheet: Image.Image, target: Path) -> Path:
    if not target.suffix:
        target = target.with_suffix(".png")
    elif target.suffix.lower() != ".png":
        raise ValueError(f"{target}: a contact sheet is a PNG; name it *.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            sheet.save(fh, format="PNG", optimize=False, compress_level=6)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
