from __future__ import annotations

from typing import Any, Dict

import pytest
import uvicorn

from qelos_integrator_fastapi.testing import FakeQelos
from qelos_integrator_fastapi.testing.__main__ import main


def test_main_serves_the_demo_and_prints_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: Dict[str, Any] = {}

    def fake_run(app: Any, **options: Any) -> None:
        served.update(app=app, **options)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    main(["--port", "8123", "--host", "127.0.0.1"])

    output = capsys.readouterr().out
    assert "alice / alice-pass" in output
    assert "bob / bob-pass" in output
    assert "QELOS_APP_URL=http://127.0.0.1:8123" in output
    assert isinstance(served["app"], FakeQelos)
    assert served["app"].url == "http://127.0.0.1:8123"
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
