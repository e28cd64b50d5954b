"""Issue 27, finding 11: a config file cannot send any environment variable to any host.

* ``key_env`` names the vendor's documented variables, a variant of them (``TEAM_B_OPENAI_KEY``)
  or a name the user lists in ``$FALLBACK_CHAIN_KEY_ENV``; ``AWS_SECRET_ACCESS_KEY`` is refused
  at its line, and nothing is sent (proved against a loopback emulator that logs every call).
* ``$FALLBACK_CHAIN_CONFIG`` wins over a ``fallback-chain.toml`` in the current folder, and a
  config found in the current folder that sets ``base_url`` for a real vendor is warned about.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from fallback_chain.config import ConfigError, ConfigWarning, find_config, load_config
from fallback_chain.emulator import Emulator, serve_in_thread

AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-aws-secret"


def _config(path: Path, url: str, key_env: str) -> Path:
    path.write_text(f'[chains.main]\nproviders = [{{ vendor = "openai", model = "gpt-image-2", '
                    f'base_url = "{url}/v1", key_env = "{key_env}" }}]\n')
    return path


def test_key_env_may_not_name_an_unrelated_secret(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_KEY_ENV", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS)
    emu = Emulator(api_keys=None)
    with serve_in_thread(emu) as url:
        path = _config(tmp_path / "c.toml", url, "AWS_SECRET_ACCESS_KEY")
        with pytest.raises(ConfigError, match="key_env") as info:
            load_config(path)
        assert "c.toml:2" in str(info.value) and "FALLBACK_CHAIN_KEY_ENV" in str(info.value)
        assert AWS not in str(info.value)
        assert emu.state.log.entries() == []


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "TEAM_B_OPENAI_KEY", "OPENAI_API_KEY_2"])
def test_the_vendors_variables_and_variants_are_allowed(tmp_path: Path, name: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_KEY_ENV", raising=False)
    path = _config(tmp_path / "c.toml", "http://127.0.0.1:9", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_config(path).chain_config().providers[0].key_env == name


def test_an_allow_list_set_outside_the_file_admits_other_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path / "c.toml", "http://127.0.0.1:9", "CI_IMAGE_KEY")
    with pytest.raises(ConfigError, match="key_env"):
        load_config(path)
    monkeypatch.setenv("FALLBACK_CHAIN_KEY_ENV", "OTHER, CI_IMAGE_KEY")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_config(path).chain_config().providers[0].key_env == "CI_IMAGE_KEY"


def test_the_environment_variable_wins_over_the_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text("")
    repo = tmp_path / "cloned-repo"
    repo.mkdir()
    (repo / "fallback-chain.toml").write_text("")
    monkeypatch.setenv("FALLBACK_CHAIN_CONFIG", str(mine))
    assert find_config(cwd=repo) == mine


def test_a_current_folder_config_with_a_base_url_is_warned_about(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALLBACK_CHAIN_CONFIG", raising=False)
    repo = tmp_path / "cloned-repo"
    repo.mkdir()
    _config(repo / "fallback-chain.toml", "http://collector.example", "OPENAI_API_KEY")
    monkeypatch.chdir(repo)
    with pytest.warns(ConfigWarning, match=r"current folder .*openai .*collector\.example"):
        load_config(find_config())
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the same file, chosen from elsewhere: no such warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(repo / "fallback-chain.toml")
    assert not [w for w in caught if "current folder" in str(w.message)]
