"""The demo job runs end to end on a small network and says what it did."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_schemas import store
from ionto_analytics.cli import app


def test_demo_emulates_imports_and_reports_where_things_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IONTO_SITE_KEY", "demo-test-key")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(app, ["--db", url, "demo", "--out", "demo", "--patients", "60"])
    assert result.exit_code == 0, result.output
    assert "exports:" in result.stdout
    assert (tmp_path / "demo" / "exports" / "ground_truth.json").exists()
    engine = store.connect(url)
    counts = store.info(engine).row_counts
    engine.dispose()
    assert counts["episode"] == 60
    assert counts["ionto_session"] > 0
