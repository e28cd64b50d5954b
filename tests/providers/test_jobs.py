"""The shared submit → poll → download steps (``fallback_chain.providers.jobs``), on virtual
time with ``httpx.MockTransport``: the capped API call, the error mapper, the poll loop's
waits, failures and deadline, download retries, and ``run_job``'s outcomes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.imaging import placeholder_image
from fallback_chain.outcome import Outcome
from fallback_chain.providers import jobs
from fallback_chain.providers.download import AllowList
from fallback_chain.vtime import VirtualClock, run_virtual

URL = "https://api.example.com/v1/job"


def mapper(answer: jobs.ErrorAnswer) -> ProviderError:
    if isinstance(answer.json, dict) and answer.json.get("detail") == "moderated":
        return ProviderError(Outcome.CONTENT_POLICY, answer.describe("moderated"),
                             status_code=answer.status)
    return jobs.status_error(answer, answer.json.get("detail") if isinstance(
        answer.json, dict) else None)


async def call(handler: Any, **kw: Any) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await jobs.api_json(client, "POST", URL, what="POST /job", map_error=mapper,
                                   timeout=5, json={"prompt": "x"}, **kw)


def test_api_json_returns_the_json_of_a_2xx_and_sends_the_body():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "j1"})

    assert asyncio.run(call(handler, headers={"x-key": "k"})) == {"id": "j1"}
    assert seen[0].headers["x-key"] == "k"
    assert json.loads(seen[0].content) == {"prompt": "x"}


@pytest.mark.parametrize(("response", "outcome", "code"), [
    (httpx.Response(200, text="<!DOCTYPE html><html></html>"), Outcome.MALFORMED_RESPONSE,
     "html_body"),
    (httpx.Response(200, text='{"id": '), Outcome.MALFORMED_RESPONSE, "invalid_json"),
    (httpx.Response(429, json={"detail": "slow down"}, headers={"retry-after": "7"}),
     Outcome.RATE_LIMITED, None),
    (httpx.Response(422, json={"detail": "moderated"}), Outcome.CONTENT_POLICY, None),
    (httpx.Response(402, json={"detail": "no credits"}), Outcome.QUOTA_EXHAUSTED, None),
    (httpx.Response(401, text="nope"), Outcome.AUTH_ERROR, None),
    (httpx.Response(422, json={"detail": "bad"}), Outcome.INVALID_REQUEST, None),
    (httpx.Response(503, text="<html>busy</html>"), Outcome.SERVER_ERROR, None),
    (httpx.Response(302, headers={"location": "https://evil.example/"}),
     Outcome.MALFORMED_RESPONSE, None),
])
def test_api_json_maps_answers(response: httpx.Response, outcome: Outcome, code: str | None):
    with pytest.raises(ProviderError) as info:
        asyncio.run(call(lambda request: response))
    assert info.value.outcome is outcome
    assert info.value.provider_code == code
    if outcome is Outcome.RATE_LIMITED:
        assert info.value.retry_after_s == 7
        assert "slow down" in info.value.message


def test_api_json_caps_the_answer():
    big = b'{"x": "' + b"a" * 5000 + b'"}'
    with pytest.raises(ProviderError) as info:
        asyncio.run(call(lambda request: httpx.Response(200, content=big), max_bytes=1000))
    assert info.value.provider_code == "oversized"
    # an error body is cut, not refused: the status still decides
    with pytest.raises(ProviderError) as info:
        asyncio.run(call(lambda request: httpx.Response(500, content=big), max_bytes=1000))
    assert info.value.outcome is Outcome.SERVER_ERROR


@pytest.mark.parametrize(("exc", "outcome"), [
    (httpx.ConnectError("refused"), Outcome.CONNECTION_ERROR),
    (httpx.ReadTimeout("slow"), Outcome.TIMEOUT),
    (httpx.RemoteProtocolError("cut"), Outcome.CONNECTION_ERROR),
])
def test_api_json_maps_transport_failures(exc: Exception, outcome: Outcome):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(ProviderError) as info:
        asyncio.run(call(handler))
    assert info.value.outcome is outcome


# ---------------------------------------------------------------------------------- poll


def test_schedule_delays_grow_to_the_cap():
    schedule = jobs.PollSchedule(initial_s=0.5, interval_s=1, max_interval_s=3, backoff=2)
    it = schedule.delays()
    assert [next(it) for _ in range(5)] == [0.5, 1, 2, 3, 3]
    with pytest.raises(ConfigurationError):
        jobs.PollSchedule(backoff=0.5)


def _poller(answers: list[Any], clock: VirtualClock, times: list[float]) -> Any:
    async def fetch() -> Any:
        times.append(clock.now())
        item = answers.pop(0)
        if isinstance(item, ProviderError):
            raise item
        return item
    return fetch


def test_poll_waits_on_the_clock_and_returns_the_finished_answer():
    clock, times = VirtualClock(), []
    run = jobs.JobRun(job_id="j")
    answers: list[Any] = [{"s": "Pending"}, {"s": "Pending"}, {"s": "Ready"}]
    schedule = jobs.PollSchedule(initial_s=1, interval_s=2, max_interval_s=10, backoff=2)

    async def go() -> Any:
        return await jobs.poll(_poller(answers, clock, times),
                               finished=lambda a: a["s"] != "Pending", schedule=schedule,
                               clock=clock, deadline=clock.now() + 100, run=run,
                               status_of=lambda a: a["s"])

    assert run_virtual(go()) == {"s": "Ready"}
    assert [round(t) for t in times] == [1, 3, 7]
    assert run.status == "Ready"


def test_poll_absorbs_transient_failures_honouring_retry_after():
    clock, times = VirtualClock(), []
    answers: list[Any] = [ProviderError(Outcome.RATE_LIMITED, retry_after_s=20),
                          ProviderError(Outcome.SERVER_ERROR), {"s": "Ready"}]

    async def go() -> Any:
        return await jobs.poll(_poller(answers, clock, times), finished=lambda a: True,
                               schedule=jobs.PollSchedule(initial_s=1, interval_s=1),
                               clock=clock, deadline=clock.now() + 100)

    assert run_virtual(go()) == {"s": "Ready"}
    assert [round(t) for t in times] == [1, 21, 22]


def test_poll_gives_up_after_max_failures_and_on_a_lasting_error():
    clock, times = VirtualClock(), []
    answers: list[Any] = [ProviderError(Outcome.SERVER_ERROR)] * 2

    async def go(items: list[Any]) -> Any:
        return await jobs.poll(_poller(items, clock, times), finished=lambda a: True,
                               schedule=jobs.PollSchedule(max_failures=2), clock=clock,
                               deadline=clock.now() + 100)

    with pytest.raises(ProviderError) as info:
        run_virtual(go(answers))
    assert info.value.outcome is Outcome.SERVER_ERROR
    with pytest.raises(ProviderError) as info:
        run_virtual(go([ProviderError(Outcome.AUTH_ERROR)]))
    assert info.value.outcome is Outcome.AUTH_ERROR


def test_poll_times_out_at_the_deadline():
    clock, times = VirtualClock(), []

    async def go() -> Any:
        return await jobs.poll(_poller([{"s": "Pending"}] * 100, clock, times),
                               finished=lambda a: False, schedule=jobs.PollSchedule(),
                               clock=clock, deadline=clock.now() + 30)

    with pytest.raises(TimeoutError):
        run_virtual(go())
    assert times and max(times) < 30


# ------------------------------------------------------------------------------- run_job


def test_run_job_names_the_job_and_its_cost_on_timeout_and_on_errors():
    clock = VirtualClock()

    async def slow(run: jobs.JobRun, deadline: float) -> None:
        run.job_id, run.status, run.cost_usd = "j9", "Pending", 0.04
        await clock.sleep(1000)

    with pytest.raises(ProviderError) as info:
        run_virtual(jobs.run_job(slow, label="Acme", timeout=10, max_wait_s=600, clock=clock))
    assert info.value.outcome is Outcome.TIMEOUT
    assert info.value.cost_usd == 0.04
    assert "Acme job j9" in info.value.message and "Pending" in info.value.message

    async def broken(run: jobs.JobRun, deadline: float) -> None:
        run.job_id, run.cost_usd = "j1", 0.01
        raise KeyError("images")

    with pytest.raises(ProviderError) as info:
        run_virtual(jobs.run_job(broken, label="Acme", timeout=10, max_wait_s=600,
                                 clock=clock))
    assert info.value.outcome is Outcome.MALFORMED_RESPONSE
    assert info.value.details["job_id"] == "j1" and info.value.cost_usd == 0.01

    async def before_submit(run: jobs.JobRun, deadline: float) -> None:
        raise ProviderError(Outcome.RATE_LIMITED)

    with pytest.raises(ProviderError) as info:
        run_virtual(jobs.run_job(before_submit, label="Acme", timeout=10, max_wait_s=600,
                                 clock=clock))
    assert info.value.cost_usd is None and "job_id" not in info.value.details


def test_attempt_budget_ends_before_the_router():
    assert jobs.attempt_budget(60, 600) == pytest.approx(59.5)
    assert jobs.attempt_budget(60, 20) == 20
    assert 0 < jobs.attempt_budget(0.1, 600) < 0.1


# ------------------------------------------------------------------------------ download


def test_download_now_retries_a_transient_failure_once_and_not_an_expired_link():
    png = placeholder_image(16, 16)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/flaky.png" and calls.count("/flaky.png") == 1:
            return httpx.Response(502)
        if request.url.path == "/gone.png":
            return httpx.Response(403)
        return httpx.Response(200, content=png)

    allow = AllowList.of(["cdn.example.com"])
    clock = VirtualClock()

    async def go(path: str) -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await jobs.download_now(client, [f"https://cdn.example.com{path}"], allow,
                                           clock=clock, deadline=clock.now() + 60,
                                           timeout_s=10)

    images = run_virtual(go("/flaky.png"))
    assert images[0].width == 16 and calls.count("/flaky.png") == 2
    with pytest.raises(ProviderError) as info:
        run_virtual(go("/gone.png"))
    assert info.value.status_code == 403 and calls.count("/gone.png") == 1


def test_loop_clients_reuse_one_client_per_loop_and_close_it():
    clients = jobs.LoopClients("acme", AllowList.of(["cdn.example.com"]), timeout_s=5,
                               transport=httpx.MockTransport(lambda r: httpx.Response(200)))

    async def go() -> bool:
        first = clients.get()
        same = first is clients.get()
        await clients.aclose()
        return same and first.is_closed

    assert asyncio.run(go())
