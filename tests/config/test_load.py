"""A valid config: the shipped example loads; paths, policy, budget, limits and warnings come
out as the file says."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from fallback_chain.config import ConfigError, ConfigWarning, load_config
from fallback_chain.cost.budget import Budget

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fallback-chain.toml"


def _load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config(path)


def test_the_shipped_example_is_valid():
    config = _load(EXAMPLE)
    assert config.chain_names == ["main", "drafts"]
    assert config.default_chain == "main"
    main = config.chain_config()
    assert [p.key for p in main.providers] == ["gemini", "leonardo", "openai/gpt-image-2"]
    assert [p.key for p in config.chain_config("drafts").providers] == ["gemini", "openai-mini"]
    # the only warning: the example's secrets file is not on this machine
    assert [n.field for n in config.notes] == ["secrets.file"]


def test_the_docs_example_is_the_shipped_example():
    docs = (ROOT / "docs" / "config.md").read_text()
    assert EXAMPLE.read_text().strip() in docs


def test_paths_are_relative_to_the_config_file(write, tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    path = write('''
        [chains.main]
        ledger = "books/ledger.db"
        storage = "out/"
        prices = "~/prices.json"
        [[chains.main.providers]]
        vendor = "fake"
        [chains.s3]
        storage = "s3://bucket/prefix"
        [[chains.s3.providers]]
        vendor = "fake"
        ''')
    path.write_text('default_chain = "main"\n' + path.read_text())
    config = _load(path)
    assert config.ledger_path() == tmp_path / "books" / "ledger.db"
    assert config.storage() == str(tmp_path / "out")
    assert config.storage("s3") == "s3://bucket/prefix"
    assert config.ledger_path("s3") is None
    assert config.resolve_path("~/prices.json") == str(Path.home() / "prices.json")


def test_policy_budget_and_limits(write):
    path = write('''
        [chains.main]
        deadline_s = 90
        attempt_timeout_s = 20
        order = "cost"
        policy = { retries = { server_error = 2 }, cooldowns_s = { rate_limited = 5 } }
        budget = { per_request_usd = 0.2, daily_usd = 10, alert_thresholds = [0.5, 1.0] }
        [[chains.main.providers]]
        vendor = "fake"
        name = "a"
        images_per_minute = 12
        max_concurrency = 3
        policy = { attempt_timeout_s = 60, retries = { timeout = 1 } }
        [[chains.main.providers]]
        vendor = "fake"
        name = "b"
        ''')
    config = _load(path)
    policy = config.policy()
    assert (policy.deadline_s, policy.attempt_timeout_s) == (90, 20)
    assert policy.rule("server_error").retries == 2
    assert dict(policy.providers) == {"a": {"attempt_timeout_s": 60, "retries": {"timeout": 1},
                                            "images_per_minute": 12, "max_concurrency": 3}}
    a = policy.for_provider("a")
    assert (a.attempt_timeout_s, a.images_per_minute, a.max_concurrency) == (60, 12, 3)
    assert a.rule("timeout").retries == 1 and a.rule("server_error").retries == 2
    budget = config.budget()
    assert isinstance(budget, Budget)
    assert (budget.per_request_usd, budget.daily_usd, budget.monthly_usd) == (0.2, 10, None)
    assert budget.alert_thresholds == (0.5, 1.0)
    assert budget.name == "main"
    chain = config.chain()
    assert chain.name == "main" and chain.budget is not None
    assert (chain.budget.per_request_usd, chain.budget.daily_usd) == (0.2, 10)
    assert [p.name for p in chain.providers] == ["a", "b"]


def test_fake_options_reach_the_adapter(write):
    path = write('''
        [chains.main]
        [[chains.main.providers]]
        vendor = "fake"
        model = "fake-xl"
        [chains.main.providers.options]
        script = [429, "ok"]
        price_usd = 0.05
        image_size = [64, 48]
        latency_s = [0.0, 0.01]
        ''')
    [fake] = _load(path).providers()
    assert fake.model == "fake-xl" and fake.price_usd == 0.05
    assert fake.image_size == (64, 48)


def test_a_bad_option_value_names_the_provider_line(write):
    path = write('''
        [chains.main]
        [[chains.main.providers]]
        vendor = "leonardo"
        options = { poll_backoff = 0.5 }
        ''')
    config = _load(path)
    with pytest.raises(ConfigError) as info:
        config.providers(emulated=_any_emulator())
    assert f"{path}:4: chains.main.providers[0].options: leonardo: poll_initial_s" in str(
        info.value)


def _any_emulator():
    from fallback_chain.config import Emulated

    return Emulated("http://127.0.0.1:9")


def test_unknown_chain_name_suggests(write):
    path = write('[chains.main]\n[[chains.main.providers]]\nvendor = "fake"\n')
    config = _load(path)
    with pytest.raises(ConfigError, match=r"no chain called 'mian'.*did you mean 'main'"):
        config.chain("mian")


def test_unknown_model_warns_with_its_line_and_a_suggestion(write):
    path = write('''
        [chains.main]
        [[chains.main.providers]]
        vendor = "openai"
        model = "gpt-image-2.5-flair"
        ''')
    with pytest.warns(ConfigWarning) as caught:
        config = load_config(path)
    [message] = [str(w.message) for w in caught if w.category is ConfigWarning]
    assert message.startswith(f"{path}:4: chains.main.providers[0].model: openai model "
                              "'gpt-image-2.5-flair' is not in the model catalogue")
    assert "did you mean 'gpt-image-2.5-flare'" in message
    assert config.warnings == [message]


def test_snapshot_ids_of_known_models_do_not_warn(write):
    path = write('''
        [chains.main]
        [[chains.main.providers]]
        vendor = "openai"
        model = "gpt-image-2-2026-04-21"
        ''')
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        assert load_config(path).notes == []


def test_retired_model_warns_with_replacement(write):
    path = write('''
        [chains.main]
        [[chains.main.providers]]
        vendor = "openai"
        model = "dall-e-3"
        ''')
    with pytest.warns(ConfigWarning, match=r":4: .*shut down on 2026-05-12.*'gpt-image-2'"):
        load_config(path)


def test_warnings_for_a_chain_leave_out_the_other_chains(write):
    path = write('''
        default_chain = "a"
        [chains.a]
        [[chains.a.providers]]
        vendor = "fake"
        [chains.b]
        [[chains.b.providers]]
        vendor = "openai"
        model = "dall-e-2"
        ''')
    config = _load(path)
    assert config.warnings_for([None]) == []
    assert len(config.warnings_for(["b"])) == 1 == len(config.warnings)


def test_ledger_is_subscribed_and_shared(write, tmp_path):
    path = write('''
        default_chain = "a"
        [chains.a]
        ledger = "ledger.db"
        [[chains.a.providers]]
        vendor = "fake"
        options = { script = [500] }
        [chains.b]
        ledger = "ledger.db"
        [[chains.b.providers]]
        vendor = "fake"
        ''')
    with _load(path) as config:
        a, b = config.chain("a", log=False), config.chain("b", log=False)
        assert config.ledger("a") is config.ledger("b")
        a.generate("one", size="64x64")
        b.generate("two", size="64x64")
        a.close()
        b.close()
        rows = config.ledger("a").rows()
        assert [(r["chain"], r["outcome"]) for r in rows] == [
            ("a", "server_error"), ("a", "success"), ("b", "success")]
    assert (tmp_path / "ledger.db").is_file()
    without = _load(path).chain("a", ledger=False, log=False)
    assert not without.events  # nothing subscribed, not even the logger
