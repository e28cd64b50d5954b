"""Where the config file is found: --config, $FALLBACK_CHAIN_CONFIG, ./fallback-chain.toml."""

from __future__ import annotations

import pytest

from fallback_chain.config import ConfigNotFoundError, find_config


def test_explicit_path_wins(tmp_path, monkeypatch):
    (tmp_path / "fallback-chain.toml").write_text("")
    other = tmp_path / "other.toml"
    other.write_text("")
    monkeypatch.setenv("FALLBACK_CHAIN_CONFIG", str(other))
    assert find_config(tmp_path / "fallback-chain.toml") == tmp_path / "fallback-chain.toml"


def test_environment_then_local_file(tmp_path, monkeypatch):
    # issue 27: the variable the user set wins over a file in the current folder (a cloned
    # repository's), which is used only when the variable is not set
    named = tmp_path / "named.toml"
    named.write_text("")
    here = tmp_path / "project"
    here.mkdir()
    (here / "fallback-chain.toml").write_text("")
    assert find_config(cwd=here) == here / "fallback-chain.toml"
    monkeypatch.setenv("FALLBACK_CHAIN_CONFIG", str(named))
    assert find_config(cwd=here) == named


def test_nothing_found_says_what_to_do(tmp_path):
    with pytest.raises(ConfigNotFoundError) as info:
        find_config(cwd=tmp_path)
    message = str(info.value)
    for hint in ("--config", "fallback-chain.toml", "FALLBACK_CHAIN_CONFIG",
                 "examples/fallback-chain.toml", "fallback-chain demo"):
        assert hint in message


def test_missing_files_are_named(tmp_path, monkeypatch):
    with pytest.raises(ConfigNotFoundError, match="given with --config"):
        find_config(tmp_path / "x.toml")
    monkeypatch.setenv("FALLBACK_CHAIN_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigNotFoundError, match=r"FALLBACK_CHAIN_CONFIG names .*gone\.toml"):
        find_config(cwd=tmp_path)
