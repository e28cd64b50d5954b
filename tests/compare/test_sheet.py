"""The contact sheet: a PNG grid of the expected size, failed runs as red tiles."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops, ImageDraw

from fallback_chain import ImageRequest, Policy
from fallback_chain.compare import compare, render_contact_sheet
from fallback_chain.compare.sheet import BACKGROUND, FAIL_EDGE, FAIL_FILL, Layout, plan_sheet
from fallback_chain.compare.text import ELLIPSIS, fit, font, plain, wrap
from fallback_chain.providers import FakeProvider
from fallback_chain.vtime import VirtualClock, run_virtual


def _comparison(runs=3, prompt="a lighthouse at dusk", size="1536x1024"):
    clock = VirtualClock()
    providers = [FakeProvider("steady", clock=clock, latency_s=0.4),
                 FakeProvider("flaky", script=[500, 500, "ok", "content_policy"], clock=clock,
                              model="flaky-model-2"),
                 FakeProvider("dead", script=["auth_error"] * 10, clock=clock)]
    return run_virtual(compare(providers, ImageRequest(prompt=prompt, size=size), runs,
                               concurrency=1, clock=clock,
                               policy=Policy(backoff_initial_s=0.01)))


def _is(pixel, colour, tol=8):
    return all(abs(a - b) <= tol for a, b in zip(pixel, colour, strict=True))


@pytest.mark.parametrize("thumb", [64, 256])
def test_sheet_is_a_grid_with_failed_tiles(tmp_path, thumb):
    comparison = _comparison(runs=3)
    path = render_contact_sheet(comparison, tmp_path / "sheet.png", thumb_px=thumb)
    plan = plan_sheet(comparison, thumb)
    lay = Layout.for_thumb(thumb)
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        assert img.size == (plan.width, plan.height)
        assert img.width == lay.pad + lay.label_w + lay.pad + 3 * (thumb + lay.pad)
        assert img.height > 3 * lay.row_h
        sheet = img.convert("RGB")
    outcomes = {(c.row, c.run): c.outcome for c in comparison.cells}
    assert outcomes == {(0, 1): "success", (0, 2): "success", (0, 3): "success",
                        (1, 1): "server_error", (1, 2): "success", (1, 3): "content_policy",
                        (2, 1): "auth_error", (2, 2): "cooling_down", (2, 3): "cooling_down"}
    for (row, run), outcome in outcomes.items():
        x0, y0, x1, y1 = plan.cell_box(row, run)
        inside = (x0 + thumb // 2, y1 - thumb // 16 - 1)  # below any text, inside the border
        centre = sheet.getpixel(inside)
        edge = sheet.getpixel((x0, (y0 + y1) // 2))
        if outcome == "success":
            assert not _is(edge, FAIL_EDGE) and not _is(centre, FAIL_FILL), (row, run)
            colours = sheet.crop((x0, y0, x1 + 1, y1 + 1)).getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 3  # a picture, not a flat tile
        else:
            assert _is(edge, FAIL_EDGE), (row, run, edge)
            assert _is(centre, FAIL_FILL), (row, run, centre)
        # the caption under every tile has ink on it
        caption = sheet.crop((x0, y1 + 1, x1 + 1, y1 + lay.caption_h))
        blank = Image.new("RGB", caption.size, BACKGROUND)
        assert ImageChops.difference(caption, blank).getbbox() is not None, (row, run)


def test_long_prompt_wraps_in_the_header_and_sheet_grows_with_runs(tmp_path):
    short = plan_sheet(_comparison(runs=2, prompt="a fox"))
    long = plan_sheet(_comparison(runs=2, prompt="a fox " * 200))
    assert len(long.header) == 4 and len(short.header) == 2  # 3 prompt lines + detail line
    assert long.header[2][0].endswith(ELLIPSIS)
    assert long.grid_y > short.grid_y
    wide = plan_sheet(_comparison(runs=5))
    assert wide.width - short.width == 3 * Layout.for_thumb(256).cell_w


def test_square_and_transparent_images(tmp_path):
    clock = VirtualClock()
    comparison = run_virtual(compare(
        [FakeProvider("a", clock=clock)],
        ImageRequest(prompt="a logo", size="1024x1024", background="transparent"), 2,
        clock=clock))
    path = render_contact_sheet(comparison, tmp_path / "t", thumb_px=96)
    assert path.name == "t.png"
    with Image.open(path) as img:
        assert img.size == (plan_sheet(comparison, 96).width, plan_sheet(comparison, 96).height)


def test_bad_arguments(tmp_path):
    comparison = _comparison(runs=1)
    with pytest.raises(ValueError, match="between 48 and 1024"):
        render_contact_sheet(comparison, tmp_path / "s.png", thumb_px=20)
    with pytest.raises(ValueError, match="is a PNG"):
        render_contact_sheet(comparison, tmp_path / "s.jpg")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_text_helpers():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    face = font(14)
    assert fit(draw, "short", face, 500) == "short"
    cut = fit(draw, "a long line of text " * 10, face, 120)
    assert cut.endswith(ELLIPSIS) and draw.textlength(cut, font=face) <= 120
    lines = wrap(draw, "one two three four five six seven eight nine ten " * 5, face, 100, 3)
    assert len(lines) == 3 and lines[-1].endswith(ELLIPSIS)
    assert all(draw.textlength(line, font=face) <= 100 for line in lines)
    assert wrap(draw, "fits", face, 100, 3) == ["fits"]
    assert wrap(draw, "", face, 100, 3) == []
    assert plain("café — 3×4  crème") == "cafe - 3x4 creme"
