"""The `cxloop` entry point: how it ends when its reader goes away, and bad option values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
