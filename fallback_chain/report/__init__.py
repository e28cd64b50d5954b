"""A batch output folder seen at a glance: one self-contained HTML report
(:func:`build_report`) and a loopback review page that writes a selection file
(:mod:`.review`). See docs/report.md."""

from __future__ import annotations

from .load import BatchView, ReportItem, load_batch
from .page import REPORT_NAME, build_report, write_report
from .selection import read_selection, write_selection

__all__ = ["REPORT_NAME", "BatchView", "ReportItem", "build_report", "load_batch",
           "read_selection", "write_report", "write_selection"]
