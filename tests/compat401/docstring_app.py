# The example of the published qelos-integrator-fastapi 4.0.1's package docstring, unchanged
# (tests/test_compat_401.py runs it against FakeQelos).
from fastapi import Depends, FastAPI
from qelos_integrator_fastapi import (
    qelos_middleware,
    get_qelos_user,
    QelosUser,
)

app = FastAPI()
app.add_middleware(qelos_middleware, app_url="https://my.qelos.io")

@app.get("/me")
async def me(user: QelosUser = Depends(get_qelos_user)):
    return {"name": user.full_name}
