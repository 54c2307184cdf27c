from __future__ import annotations

import qelos_integrator_fastapi


def test_all_is_sorted_and_complete() -> None:
    exported = qelos_integrator_fastapi.__all__
    assert exported == sorted(exported)
    public = {name for name in vars(qelos_integrator_fastapi) if not name.startswith("_")}
    modules = {name for name, value in vars(qelos_integrator_fastapi).items() if type(value).__name__ == "module"}
    assert set(exported) == public - modules - {"annotations"}
