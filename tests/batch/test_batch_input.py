"""Input rows: CSV and JSONL, validation errors with file, line and field, stable ids."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from fallback_chain.batch.engine import detect_format
from fallback_chain.batch.index import BatchIndex
from fallback_chain.batch.items import BatchItem, RowError
from fallback_chain.batch.items_stream import iter_items
from fallback_chain.batch.reader import InputError, format_for, open_input


def parse(data: str | bytes, fmt: str = "csv", source: str = "in.csv"
          ) -> tuple[list[str], list[BatchItem | RowError]]:
    raw = data.encode() if isinstance(data, str) else data
    with BatchIndex() as index:
        header, rows = iter_items(io.BytesIO(raw), fmt, source, index)  # type: ignore[arg-type]
        return header, list(rows)


def errors(rows: list[BatchItem | RowError]) -> list[str]:
    return [str(r) for r in rows if isinstance(r, RowError)]


def test_csv_fields_metadata_and_extra_columns() -> None:
    header, rows = parse(
        'id,prompt,size,quality,n,seed,negative_prompt,metadata,campaign\n'
        'a1,"a fox, in snow",1024X1024,final,2,7,blur,"{""k"": [1, 2]}",spring\n'
        'a2,a cat,,,,,,,\n')
    assert header == ["id", "prompt", "size", "quality", "n", "seed", "negative_prompt",
                      "metadata", "campaign"]
    a1, a2 = rows
    assert isinstance(a1, BatchItem) and isinstance(a2, BatchItem)
    r = a1.request
    assert (a1.id, a1.line, r.prompt, r.size, r.quality, r.n, r.seed, r.negative_prompt) == (
        "a1", 2, "a fox, in snow", "1024x1024", "final", 2, 7, "blur")
    assert r.metadata == {"k": [1, 2], "campaign": "spring"}
    assert (a2.request.size, a2.request.quality, a2.request.n) == ("auto", "standard", 1)
    assert a2.request.metadata == {}


def test_jsonl_rows_and_unknown_keys_go_to_metadata() -> None:
    _, rows = parse('{"id": 5, "prompt": "p", "n": 3, "metadata": {"a": 1}, "brand": "x"}\n'
                    '\n'
                    '{"prompt": "q", "exact_prompt": true}\n', "jsonl", "in.jsonl")
    first, second = rows
    assert isinstance(first, BatchItem) and isinstance(second, BatchItem)
    assert (first.id, first.request.n, first.request.metadata) == ("5", 3, {"a": 1, "brand": "x"})
    assert second.line == 3 and second.request.exact_prompt is True and second.derived_id


def test_bad_rows_name_file_line_and_field_and_do_not_stop_the_rest() -> None:
    _, rows = parse('id,prompt,n,size,metadata\n'
                    'ok1,fine,1,,\n'
                    'bad-n,fine,11,,\n'
                    'bad-size,fine,1,huge,\n'
                    'no-prompt,,1,,\n'
                    'bad-meta,fine,1,,{oops\n'
                    'list-meta,fine,1,,[1]\n'
                    'too,many,cells,1,2,3\n'
                    'ok2,"multi\nline prompt",1,,\n'
                    'after,fine,1,,\n')
    assert errors(rows) == [
        "in.csv, line 3: n: must be between 1 and 10 (got 11)",
        "in.csv, line 4: size: 'huge' is not a size; use 'WxH' in pixels (e.g. '1024x1024'), "
        "an aspect ratio (e.g. '16:9'), or 'auto'",
        "in.csv, line 5: prompt: is required",
        "in.csv, line 6: metadata: is not valid JSON (Expecting property name enclosed in "
        "double quotes at character 2)",
        "in.csv, line 7: metadata: must be a JSON object (got list)",
        "in.csv, line 8: has 6 cells but the header has 5 columns (quote cells that contain "
        "commas)",
    ]
    good = [r for r in rows if isinstance(r, BatchItem)]
    assert [(g.id, g.line) for g in good] == [("ok1", 2), ("ok2", 9), ("after", 11)]
    assert good[1].request.prompt == "multi\nline prompt"
    bad = [r for r in rows if isinstance(r, RowError)]
    assert bad[0].row == {"id": "bad-n", "prompt": "fine", "n": "11", "size": "",
                          "metadata": ""}
    assert bad[0].id == "bad-n"


def test_jsonl_errors() -> None:
    _, rows = parse('{"prompt": "ok"}\n{"prompt": \n[1, 2]\n{"prompt": "x", "images": []}\n'
                    '{"prompt": "x", "id": ["a"]}\n', "jsonl", "in.jsonl")
    assert errors(rows) == [
        "in.jsonl, line 2: not valid JSON: Expecting value at column 12",
        "in.jsonl, line 3: expected a JSON object, got list",
        "in.jsonl, line 4: images: edits are not supported in batch input",
        "in.jsonl, line 5: id: must be a string (got list)",
    ]


def test_non_utf8_bytes_name_the_line_and_the_rest_is_read() -> None:
    data = b'prompt,id\nfine,a\ncaf\xe9 au lait,b\nalso fine,c\n'
    _, rows = parse(data)
    assert errors(rows) == ["in.csv, line 3: not valid UTF-8: byte 0xe9 at column 4 (save "
                            "the file as UTF-8)"]
    assert [r.id for r in rows if isinstance(r, BatchItem)] == ["a", "c"]
    _, rows = parse(b'{"prompt": "ok"}\n{"prompt": "\xff"}\n', "jsonl", "in.jsonl")
    assert errors(rows) == ["in.jsonl, line 2: not valid UTF-8: byte 0xff at column 13 (save "
                            "the file as UTF-8)"]


def test_utf8_bom_and_crlf_are_fine() -> None:
    _, rows = parse(b'\xef\xbb\xbfprompt,id\r\nhello,a\r\n')
    assert [(r.id, r.request.prompt) for r in rows if isinstance(r, BatchItem)] == [
        ("a", "hello")]


def test_header_problems_stop_before_anything_runs() -> None:
    with pytest.raises(InputError, match=r"in.csv, line 1: the first line must be a header "
                                         r"naming a 'prompt' column"):
        parse("text,size\nhello,auto\n")
    with pytest.raises(InputError, match=r"column\(s\) \['prompt'\] appear more than once"):
        parse("prompt,Prompt\na,b\n")
    assert parse("")[1] == []


def test_missing_ids_are_derived_from_content_stable_and_distinct() -> None:
    data = ("prompt,size,campaign\n"
            "a fox,64x64,x\n"
            "a fox,64x64,x\n"  # identical row: same content, next free id
            "a fox,64x64,y\n"  # different metadata: different id, same request
            "a fox,128x128,x\n")
    _, first = parse(data)
    _, again = parse(data)
    ids = [r.id for r in first if isinstance(r, BatchItem)]
    assert ids == [r.id for r in again if isinstance(r, BatchItem)]  # re-runs match
    assert len(set(ids)) == 4 and ids[1] == ids[0] + "-2"
    assert all(i.startswith("row-") for i in ids)
    keys = [r.key for r in first if isinstance(r, BatchItem)]
    assert keys[0] == keys[1] == keys[2] != keys[3]  # metadata is not part of the request


def test_duplicate_ids_are_refused_with_the_first_line() -> None:
    _, rows = parse("id,prompt\nx,one\ny,two\nx,three\n")
    assert errors(rows) == ["in.csv, line 4: id: 'x' is also the id of the row on line 2"]


def test_an_error_column_from_a_failures_file_is_ignored() -> None:
    _, rows = parse("id,prompt,error\nx,one,in.csv line 3: boom\n")
    assert isinstance(rows[0], BatchItem) and rows[0].request.metadata == {}


def test_very_long_ids_are_refused_clearly() -> None:
    _, rows = parse(f"id,prompt\n{'x' * 5000},p\n")
    assert errors(rows) == ["in.csv, line 2: id: is 5,000 characters; at most 1,000"]


def test_formats_by_name_and_by_content(tmp_path: Path) -> None:
    assert format_for("a/b.CSV") == "csv" and format_for("x.jsonl.gz") == "jsonl"
    assert format_for("s3://b/k.ndjson") == "jsonl" and format_for("x.txt") is None
    with pytest.raises(InputError, match=r"a \.json file is not JSON Lines"):
        format_for("x.json")
    sniffed = tmp_path / "rows.txt"
    sniffed.write_text('\n{"prompt": "a"}\n')
    assert detect_format(str(sniffed), None) == "jsonl"
    zipped = tmp_path / "rows.csv.gz"
    zipped.write_bytes(gzip.compress(b"prompt\nzipped\n"))
    with BatchIndex() as index, open_input(str(zipped)) as fh:
        rows = list(iter_items(fh, "csv", str(zipped), index)[1])
    assert [r.request.prompt for r in rows if isinstance(r, BatchItem)] == ["zipped"]
    with pytest.raises(InputError, match="no such file"), open_input(str(tmp_path / "nope.csv")):
        pass
