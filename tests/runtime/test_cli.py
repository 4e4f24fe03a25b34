"""The `cxloop` entry point: how it ends when its reader goes away, and bad option values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cxruntime.cli import main


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    # `cxloop sentiment score < many-lines | head -1`: the reader closes the pipe early. The
    # answers (about 1 MB) do not fit in the pipe, so the command is still writing then.
    lines = tmp_path / "lines.txt"
    lines.write_text("Das war super\n" * 20_000, encoding="utf-8")
    command = [sys.executable, "-m", "cxruntime.cli", "sentiment", "score", "--language", "de"]
    with lines.open("rb") as stdin:
        proc = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    status = proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    assert first.startswith(b'{"label":"positive"')
    assert status == 141
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["topics", "create", "--partitions", "0"], "must be at least 1, not 0"),
        (["deliveries", "list", "--limit", "-1"], "must be at least 1, not -1"),
        (["sentiment", "train", "--data", "x", "--out", "y", "--epochs", "0"], "at least 1"),
        (["sentiment", "score", "--batch", "many"], "invalid integer value: 'many'"),
    ],
)
def test_integer_options_out_of_range_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "variable", "value", "message"),
    [
        (["metrics"], "CX_METRICS_PORT", "eighty", "invalid CX_* setting in the environment"),
        (["pii", "redact"], "CX_ENRICHER_PII_KEEP", "name", "lists and mappings are written as"),
        (["closed-loop"], "CX_CLOSED_LOOP_WEBHOOK_PREVIOUS_SECRETS", "whsec_x", "as JSON"),
    ],
)
def test_a_bad_environment_variable_is_a_one_line_error(
    argv: list[str],
    variable: str,
    value: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cxloop: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.integration
def test_a_revoked_keys_name_can_be_used_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CX_DATABASE_URL", database_url)
    assert main(["keys", "create", "--name", "appkey", "--scopes", "ingest"]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert main(["keys", "create", "--name", "appkey", "--scopes", "ingest"]) == 2
    assert "a key named 'appkey' exists already" in capsys.readouterr().err
    assert main(["keys", "revoke", "appkey"]) == 0
    capsys.readouterr()
    assert main(["keys", "create", "--name", "appkey", "--scopes", "ingest"]) == 0
    second = capsys.readouterr().out.splitlines()[-1]
    assert second.startswith("cxk_")
    assert second != first
    assert main(["keys", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted((row[0], row[-1]) for row in rows) == [
        ("appkey", "active"),
        ("appkey", "revoked"),
    ]


class FakePipeline:
    """The collector, metrics API and closed loop as the demo sees them, over MockTransport.

    Accepted events reach the KPIs `metrics_step` and the closed loop `cases_step` per poll
    (0: that stage is stalled); the enricher stalls both when `enricher` is False."""

    def __init__(self, *, metrics_step: int = 15, cases_step: int = 10, enricher: bool = True):
        self.metrics_step, self.cases_step, self.enricher = metrics_step, cases_step, enricher
        self.accepted = 0
        self.counted = 100  # what the metrics API counted before the demo
        self.processed = 50  # what the closed loop processed before the demo
        self.polls = 0
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(f"{request.method} {request.url.host}{path}")
        if path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        if path == "/v1/feedback/batch":
            events = json.loads(request.content)["events"]
            self.accepted += len(events)
            return httpx.Response(
                200, json={"accepted": len(events), "duplicates": 0, "rejected": []}
            )
        if path == "/v1/channels/email":
            self.accepted += 1
            return httpx.Response(202, json={"id": "e", "status": "accepted"})
        if path == "/v1/channels/contact-centre":
            self.accepted += 1
            return httpx.Response(200, json={"accepted": 1, "duplicates": 0, "rejected": []})
        if path == "/v1/kpis":
            return self.kpis(request)
        if path == "/metrics":
            if self.enricher:
                self.processed = min(50 + self.accepted, self.processed + self.cases_step)
            return httpx.Response(
                200,
                text="# HELP cx_closed_loop_feedback_total Enriched events seen.\n"
                "# TYPE cx_closed_loop_feedback_total counter\n"
                f'cx_closed_loop_feedback_total{{outcome="opened"}} {self.processed - 20}.0\n'
                'cx_closed_loop_feedback_total{outcome="ignored"} 20.0\n',
            )
        if path == "/v1/cases":
            assert request.url.params["status"] == "open"
            return httpx.Response(200, json={"items": [], "total": self.processed - 50})
        return httpx.Response(404)

    def kpis(self, request: httpx.Request) -> httpx.Response:
        if "group_by" in request.url.params:
            group = {"key": {"channel": "web"}, "responses": self.counted, "nps": {}}
            return httpx.Response(200, json={"groups": [group]})
        assert request.url.params["from"] < request.url.params["to"]
        if self.enricher:
            self.counted = min(100 + self.accepted, self.counted + self.metrics_step)
        return httpx.Response(200, json={"groups": [{"key": {}, "responses": self.counted}]})


def _run_demo(pipeline: FakePipeline, **extra: object) -> int:
    import argparse

    from cxruntime.demo import run_demo

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    args = argparse.Namespace(
        collector="http://collector.test",
        metrics="http://metrics.test",
        closed_loop="http://closed-loop.test",
        key="cxk_test",
        events=40,
        seed=7,
        wait=5.0,
    )
    vars(args).update(extra)
    return run_demo(
        args, transport=httpx.MockTransport(pipeline.handle), sleep=sleep, clock=lambda: now[0]
    )


def test_demo_waits_until_the_kpis_count_and_the_closed_loop_processed_its_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = FakePipeline()
    assert _run_demo(pipeline) == 0
    out = capsys.readouterr().out
    assert "posted 40 events" in out
    # Printed only once both stages had all 40: no stale numbers.
    assert "all 40 counted and processed after" in out
    assert (pipeline.counted, pipeline.processed) == (140, 90)
    assert "web                140" in out
    assert "Open cases: 40 " in out


@pytest.mark.parametrize(
    ("pipeline", "stage"),
    [
        (FakePipeline(metrics_step=0), "the metrics service at http://metrics.test is behind"),
        (FakePipeline(cases_step=0), "the closed loop at http://closed-loop.test is behind"),
        (FakePipeline(enricher=False), "the enricher (or Kafka) is behind or stopped"),
    ],
)
def test_demo_names_the_stage_that_did_not_catch_up_and_fails(
    pipeline: FakePipeline, stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_demo(pipeline) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("cxloop demo: timed out waiting for the pipeline: the metrics API")
    assert stage in line
    assert "KPIs, last 24 h" not in captured.out
    assert "Open cases" not in captured.out


def test_demo_refuses_to_start_without_the_metrics_api(capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = FakePipeline()
    handle = pipeline.handle

    def no_metrics(request: httpx.Request) -> httpx.Response:
        if request.url.host == "metrics.test":
            raise httpx.ConnectError("connection refused", request=request)
        return handle(request)

    pipeline.handle = no_metrics  # type: ignore[method-assign]
    assert _run_demo(pipeline) == 2
    err = capsys.readouterr().err
    assert err.startswith("cxloop demo: no metrics API at http://metrics.test (")
    assert not [r for r in pipeline.requests if r.startswith("POST")]  # nothing posted
