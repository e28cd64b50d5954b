"""The TOML position scanner: every key, table, array element and inline-table key gets its
line, including after multi-line strings and arrays, in arrays of tables and dotted keys."""

from __future__ import annotations

import tomllib

import pytest

from fallback_chain.config.locate import Positions

DOC = '''\
# a comment with = and [brackets]
default_chain = "main"            # line 2
[secrets]
file = "x # not a comment"        # line 4
[chains.main]
deadline_s = 300
policy = { retries = { server_error = 1 }, cooldowns_s = { "rate_limited" = 20 } }
tags = [
  "a",  # x
  { q = 1 },
]
text = """multi
name = "not a key"
"""
literal = \'\'\'c:\\path\'\'\'
[[chains.main.providers]]
vendor = "gemini"
options.poll_initial_s = 2
[[chains.main.providers]]
vendor = 'openai'
[chains.main.providers.policy]
attempt_timeout_s = 3
[chains."b c".x]
d = 1979-05-27 07:32:00Z
'''

EXPECTED = [
    (("default_chain",), 2),
    (("secrets",), 3),
    (("secrets", "file"), 4),
    (("chains", "main"), 5),
    (("chains", "main", "deadline_s"), 6),
    (("chains", "main", "policy", "retries", "server_error"), 7),
    (("chains", "main", "policy", "cooldowns_s", "rate_limited"), 7),
    (("chains", "main", "tags"), 8),
    (("chains", "main", "tags", 0), 9),
    (("chains", "main", "tags", 1, "q"), 10),
    (("chains", "main", "text"), 12),
    (("chains", "main", "literal"), 15),
    (("chains", "main", "providers", 0), 16),
    (("chains", "main", "providers", 0, "vendor"), 17),
    (("chains", "main", "providers", 0, "options", "poll_initial_s"), 18),
    (("chains", "main", "providers", 1), 19),
    (("chains", "main", "providers", 1, "vendor"), 20),
    (("chains", "main", "providers", 1, "policy"), 21),
    (("chains", "main", "providers", 1, "policy", "attempt_timeout_s"), 22),
    (("chains", "b c", "x", "d"), 24),
]


def test_document_is_valid_toml():
    tomllib.loads(DOC)


@pytest.mark.parametrize(("path", "line"), EXPECTED)
def test_every_key_has_its_line(path, line):
    assert Positions(DOC).exact(path) == line


def test_a_key_inside_a_multiline_string_is_not_a_key():
    assert Positions(DOC).exact(("chains", "main", "name")) is None


def test_unknown_paths_fall_back_to_the_nearest_table():
    where = Positions(DOC)
    assert where.line(("chains", "main", "providers", 1, "model")) == 19
    assert where.line(("chains", "main", "budget", "daily_usd")) == 5
    assert where.line(("nowhere",)) is None


def test_crlf_line_endings():
    text = "a = 1\r\n[t]\r\nb = [\r\n  1,\r\n  2,\r\n]\r\n"
    tomllib.loads(text)
    where = Positions(text)
    assert (where.exact(("t", "b")), where.exact(("t", "b", 1))) == (3, 5)


def test_garbage_never_raises():
    assert Positions("[[[").lines == {}
