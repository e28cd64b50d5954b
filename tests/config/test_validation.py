"""Validation: every bad config is refused with the file, the line and the field, and a useful
message (with a "did you mean" hint for typos). Keys in the config are refused outright."""

from __future__ import annotations

import pytest

from fallback_chain.config import ConfigError, load_config

GOOD_PROVIDER = '[[chains.main.providers]]\nvendor = "fake"\n'

# (id, config text, line, field, fragment of the message)
CASES = [
    ("typo-top-level", 'defualt_chain = "main"\n[chains.main]\n' + GOOD_PROVIDER,
     1, "defualt_chain", "did you mean 'default_chain'"),
    ("typo-chain-key", '[chains.main]\ndeadine_s = 3\n' + GOOD_PROVIDER,
     2, "chains.main.deadine_s", "did you mean 'deadline_s'"),
    ("policy-key-at-chain-level", '[chains.main]\nretries = { timeout = 1 }\n' + GOOD_PROVIDER,
     2, "chains.main.retries", "put it in policy = { retries = ... }"),
    ("typo-policy-key", '[chains.main]\npolicy = { retires = { server_error = 2 } }\n'
     + GOOD_PROVIDER, 2, "chains.main.policy.retires", "did you mean 'retries'"),
    ("policy-providers-table", '[chains.main]\npolicy = { providers = {} }\n' + GOOD_PROVIDER,
     2, "chains.main.policy.providers", "provider's own table"),
    ("bad-outcome-name", '[chains.main]\n\npolicy = { retries = { server_eror = 2 } }\n'
     + GOOD_PROVIDER, 3, "chains.main.policy.retries.server_eror", "not a provider outcome"),
    ("bad-policy-value", '[chains.main]\npolicy = { on_content_policy = "ignore" }\n'
     + GOOD_PROVIDER, 2, "chains.main.policy.on_content_policy", "'stop' or 'advance'"),
    ("negative-timeout", '[chains.main]\nattempt_timeout_s = -1\n' + GOOD_PROVIDER,
     2, "chains.main.attempt_timeout_s", "greater than 0"),
    ("order", '[chains.main]\norder = "cheapest"\n' + GOOD_PROVIDER,
     2, "chains.main.order", "'given' or 'cost'"),
    ("unknown-vendor", '[chains.main]\n[[chains.main.providers]]\nvendor = "gemni"\n',
     3, "chains.main.providers[0].vendor", "did you mean 'gemini'"),
    ("no-providers", '[chains.main]\ndeadline_s = 5\n',
     1, "chains.main.providers", "required"),
    ("empty-providers", '[chains.main]\nproviders = []\n',
     2, "chains.main.providers", "at least 1 item"),
    ("missing-vendor", '[chains.main]\n[[chains.main.providers]]\nmodel = "x"\n',
     2, "chains.main.providers[0].vendor", "required"),
    ("typo-provider-key", '[chains.main]\n' + GOOD_PROVIDER + 'nmae = "x"\n',
     4, "chains.main.providers[0].nmae", "did you mean 'name'"),
    ("unknown-option", '[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
     'options = { poll_intervall_s = 2 }\n', 4,
     "chains.main.providers[0].options.poll_intervall_s", "did you mean 'poll_interval_s'"),
    ("option-that-is-a-field", '[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
     'options = { base_url = "http://x" }\n', 4,
     "chains.main.providers[0].options.base_url", "in the provider table itself"),
    ("second-provider-same-name", '[chains.main]\n' + GOOD_PROVIDER + GOOD_PROVIDER,
     5, "chains.main.providers[1].vendor", "both called 'fake'"),
    ("same-explicit-name", '[chains.main]\n[[chains.main.providers]]\nvendor = "fake"\n'
     'name = "a"\n[[chains.main.providers]]\nvendor = "fake"\nname = "a"\n',
     7, "chains.main.providers[1].name", "both called 'a'"),
    ("rate-limit", '[chains.main]\n' + GOOD_PROVIDER + 'images_per_minute = 0\n',
     4, "chains.main.providers[0].images_per_minute", "greater than 0"),
    ("limit-twice", '[chains.main]\n' + GOOD_PROVIDER
     + 'max_concurrency = 2\npolicy = { max_concurrency = 3 }\n',
     4, "chains.main.providers[0].max_concurrency", "set both here and in policy"),
    ("deadline-twice", '[chains.main]\ndeadline_s = 3\npolicy = { deadline_s = 4 }\n'
     + GOOD_PROVIDER, 2, "chains.main.deadline_s", "set both here and in policy"),
    ("base-url", '[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
     'base_url = "localhost:8000"\n', 4, "chains.main.providers[0].base_url", "http://"),
    ("fake-with-url", '[chains.main]\n' + GOOD_PROVIDER + 'base_url = "http://x"\n',
     4, "chains.main.providers[0].base_url", "calls no API"),
    ("key-env-not-a-name", '[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
     'key_env = "my key"\n', 4, "chains.main.providers[0].key_env", "NAME of an environment"),
    ("budget", '[chains.main]\nbudget = { daily_usd = -5 }\n' + GOOD_PROVIDER,
     2, "chains.main.budget.daily_usd", "greater than or equal to 0"),
    ("budget-typo", '[chains.main]\nbudget = { dayly_usd = 5 }\n' + GOOD_PROVIDER,
     2, "chains.main.budget.dayly_usd", "did you mean 'daily_usd'"),
    ("default-chain-unknown", 'default_chain = "mian"\n[chains.main]\n' + GOOD_PROVIDER,
     1, "default_chain", "did you mean 'main'"),
    ("several-chains-no-default", '[chains.a]\n[[chains.a.providers]]\nvendor = "fake"\n'
     '[chains.b]\n[[chains.b.providers]]\nvendor = "fake"\n',
     None, "default_chain", "several chains (a, b)"),
    ("chain-name", '[chains."my chain"]\n[[chains."my chain".providers]]\nvendor = "fake"\n',
     1, "chains.'my chain'", "letters, digits"),
    ("no-chains", 'default_chain = "x"\n', None, "chains", "required"),
    ("wrong-type", '[chains.main]\nconcurrency = "many"\n' + GOOD_PROVIDER,
     2, "chains.main.concurrency", "valid integer"),
    ("secrets-typo", '[secrets]\npath = "x"\n[chains.main]\n' + GOOD_PROVIDER,
     2, "secrets.path", "valid keys here: file"),
]


@pytest.mark.parametrize(("text", "line", "field", "fragment"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_names_file_line_and_field(write, text, line, field, fragment):
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [p for p in info.value.problems if (p.line, p.field) == (line, field)]
    assert found, str(info.value)
    assert fragment in found[0].message, found[0].message
    where = f"{path}:{line}" if line else str(path)
    assert f"{where}: {field}: " in str(info.value)


def test_every_problem_is_reported_not_just_the_first(write):
    path = write('''
        [chains.main]
        deadine_s = 3
        order = "cheap"
        [[chains.main.providers]]
        vendor = "gemni"
        ''')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = {(p.line, p.field) for p in info.value.problems}
    assert got == {(2, "chains.main.deadine_s"), (3, "chains.main.order"),
                   (5, "chains.main.providers[0].vendor")}
    assert str(info.value).startswith(f"{path}: 3 problems\n")


def test_toml_syntax_error_names_the_line(write):
    path = write('[chains.main]\ndeadline_s = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].line == 2
    assert f"{path}:2: not valid TOML" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


# ------------------------------------------------------------------------------ secrets

SECRET = "sk-proj-PLANTEDabcdefghijklmnop1234"

KEY_CASES = [
    ("api_key", f'[chains.main]\n{GOOD_PROVIDER}api_key = "whatever-123"\n', 4,
     "chains.main.providers[0].api_key"),
    ("api_key-in-options", '[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
     'options = { api_key = "x" }\n', 4, "chains.main.providers[0].options.api_key"),
    ("token", '[chains.main]\ntoken = "abc"\n' + GOOD_PROVIDER, 2, "chains.main.token"),
    ("secrets-inline", f'[secrets]\nOPENAI_API_KEY = "{SECRET}"\n[chains.main]\n'
     + GOOD_PROVIDER, 2, "secrets.OPENAI_API_KEY"),
    ("password", '[chains.main]\n' + GOOD_PROVIDER + 'options = { proxy_password = "p" }\n',
     4, "chains.main.providers[0].options.proxy_password"),
    ("value-shaped-like-a-key", f'[chains.main]\n{GOOD_PROVIDER}name = "{SECRET}"\n', 4,
     "chains.main.providers[0].name"),
    ("value-in-a-list", '[chains.main]\n' + GOOD_PROVIDER
     + f'options = {{ script = ["ok", "{SECRET}"] }}\n', 4,
     "chains.main.providers[0].options.script[1]"),
]


@pytest.mark.parametrize(("text", "line", "field"), [c[1:] for c in KEY_CASES],
                         ids=[c[0] for c in KEY_CASES])
def test_keys_in_the_config_are_refused(write, text, line, field):
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problem = info.value.problems[0]
    assert (problem.line, problem.field) == (line, field)
    message = str(info.value)
    assert "never go in the config file" in message
    assert "secrets file" in message
    assert SECRET not in message and "whatever-123" not in message


def test_refusal_names_the_vendors_variable(write):
    path = write('[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
                 'api_key = "x"\n')
    with pytest.raises(ConfigError, match="set LEONARDO_API_KEY in the environment"):
        load_config(path)


def test_a_value_equal_to_a_key_in_the_environment_is_refused(write, monkeypatch):
    leonardo_key = "3f1c2d4e-5a6b-7c8d-9e0f-a1b2c3d4e5f6"  # Leonardo keys look like UUIDs
    monkeypatch.setenv("LEONARDO_API_KEY", leonardo_key)
    path = write(f'[chains.main]\n[[chains.main.providers]]\nvendor = "leonardo"\n'
                 f'model = "{leonardo_key}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].field == "chains.main.providers[0].model"
    assert leonardo_key not in str(info.value)


def test_key_env_names_a_variable_and_is_allowed(write):
    path = write('[chains.main]\n[[chains.main.providers]]\nvendor = "openai"\n'
                 'key_env = "TEAM_B_OPENAI_KEY"\n')
    assert load_config(path).chain_config().providers[0].key_env == "TEAM_B_OPENAI_KEY"
