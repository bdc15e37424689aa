"""The ceiling: a bare FastAPI app with one static JSON route, served by the same stack."""

from fastapi import FastAPI

app = FastAPI()

_PAYLOAD: dict[str, object] = {
    "status": "ok",
    "items": [{"id": i, "title": f"item {i}"} for i in range(5)],
}


@app.get("/static")
async def static() -> dict[str, object]:
    return _PAYLOAD
