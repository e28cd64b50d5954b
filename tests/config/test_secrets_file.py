"""The secrets file: KEY=value lines, parse errors that never show the value, permissions."""

from __future__ import annotations

import pytest

from fallback_chain.config import ConfigError, ConfigWarning, load_config
from fallback_chain.config.secrets_file import SecretsFile, read_secrets
from fallback_chain.secrets import redact


def test_formats(tmp_path):
    path = tmp_path / "s.env"
    path.write_text('# comment\n\nA=plain\nexport B = "double quoted # not a comment"\n'
                    "C='single'\nD=value # trailing comment\nE=\n")
    assert read_secrets(path) == {"A": "plain", "B": "double quoted # not a comment",
                                  "C": "single", "D": "value", "E": ""}
    assert SecretsFile(path).get("E") is None


def test_values_are_registered_for_redaction(tmp_path):
    path = tmp_path / "s.env"
    path.write_text("OPENAI_API_KEY=zz-registered-secret-77\n")
    read_secrets(path)
    assert redact("leaked zz-registered-secret-77!") == "leaked ***!"


def test_a_bad_line_is_reported_without_its_content(tmp_path):
    path = tmp_path / "s.env"
    path.write_text("A=1\nthis line holds sk-key-material-xyz\n")
    with pytest.raises(ConfigError) as info:
        read_secrets(path)
    assert str(info.value).startswith(f"{path}:2: expected NAME=value")
    assert "key-material" not in str(info.value)


def test_a_secrets_file_others_can_read_warns(write, tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("OPENAI_API_KEY=x\n")
    secrets.chmod(0o644)
    path = write('[secrets]\nfile = "secrets.env"\n[chains.main]\n[[chains.main.providers]]\n'
                 'vendor = "fake"\n')
    with pytest.warns(ConfigWarning, match=r":2: secrets.file: .*chmod 600"):
        load_config(path)


def test_a_missing_secrets_file_warns(write):
    path = write('[secrets]\nfile = "nope.env"\n[chains.main]\n[[chains.main.providers]]\n'
                 'vendor = "fake"\n')
    with pytest.warns(ConfigWarning, match="does not exist; keys will come from the environment"):
        load_config(path)
