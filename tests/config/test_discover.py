"""Where the config file is found: --config, ./fallback-chain.toml, $FALLBACK_CHAIN_CONFIG."""

from __future__ import annotations

import pytest

from fallback_chain.config import ConfigNotFoundError, find_config


def test_explicit_path_wins(tmp_path, monkeypatch):
    (tmp_path / "fallback-chain.toml").write_text("")
    other = tmp_path / "other.toml"
    other.write_text("")
    monkeypatch.setenv("FALLBACK_CHAIN_CONFIG", str(other))
    assert find_config(tmp_path / "fallback-chain.toml") == tmp_path / "fallback-chain.toml"


def test_local_file_then_environment(tmp_path, monkeypatch):
    named = tmp_path / "named.toml"
    named.write_text("")
    monkeypatch.setenv("FALLBACK_CHAIN_CONFIG", str(named))
    here = tmp_path / "project"
    here.mkdir()
    assert find_config(cwd=here) == named
    (here / "fallback-chain.toml").write_text("")
    assert find_config(cwd=here) == here / "fallback-chain.toml"


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
