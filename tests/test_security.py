"""Security properties of the public door (docs/security.md points here)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.stack import ADMIN_KEY, StackApp, in_process_stack, serving


def test_api_answers_carry_security_headers(sqlite_url: str) -> None:
    with in_process_stack(sqlite_url) as client:
        answers = [
            client.get("/v1/platforms"),  # forwarded
            client.get("/v1/platforms", headers={"X-API-Key": "wrong"}),  # the gateway's own 401
            client.get("/healthz"),
        ]
        for response in answers:
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in response.headers["content-security-policy"]
        for page in ("/docs", "/redoc"):
            response = client.get(page)
            assert response.status_code == 200
            # Swagger UI and ReDoc load scripts from a CDN: the API's policy would blank them.
            assert "content-security-policy" not in response.headers
            assert response.headers["x-content-type-options"] == "nosniff"


def test_server_fields_cannot_be_mass_assigned(sqlite_url: str) -> None:
    server_fields = {
        "id": "plt_0000000000000000",
        "version": 999,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
    }
    with in_process_stack(sqlite_url) as client:
        refused = client.post("/v1/platforms", json={"name": "x", **server_fields})
        assert refused.status_code == 422
        assert {e["field"] for e in refused.json()["errors"]} == set(server_fields)
        demand = client.post("/v1/demands", json={"title": "t"}).json()
        for field, value in server_fields.items():
            patched = client.patch(f"/v1/demands/{demand['id']}", json={field: value})
            assert patched.status_code == 422, field
            assert [e["field"] for e in patched.json()["errors"]] == [field]
        report = client.post(
            "/v1/import", json={"platforms": [{"external_ref": "r", "name": "x", **server_fields}]}
        ).json()
        assert report["created"]["platforms"] == 0 and len(report["rejected"]) == 1
        assert client.get(f"/v1/demands/{demand['id']}").json() == {
            k: v for k, v in demand.items() if k not in ("warnings",)
        }


def _raw(base_url: str, request: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def test_dot_segments_cannot_climb_to_admin_or_internal_routes(tmp_path: Path) -> None:
    # Sent raw on a socket: HTTP clients (httpx, curl without --path-as-is) would resolve the
    # dots themselves, and the gateway must not rely on callers being that polite.
    from services.catalog import migrate

    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate.upgrade(url)
    with serving(StackApp(url)) as base:
        import httpx

        admin = {"X-API-Key": ADMIN_KEY}
        writer = httpx.post(
            f"{base}/v1/admin/keys",
            json={"label": "writer", "scopes": ["catalog:write"]},
            headers=admin,
        ).json()["key"]
        body = b'{"label":"stolen","scopes":["admin"]}'
        for path in (
            b"/v1/platforms/../admin/keys",
            b"/v1/platforms/%2e%2e/admin/keys",
            b"/v1/./admin/keys",
            b"/v1//admin/keys",
        ):
            answer = _raw(
                base,
                b"POST "
                + path
                + b" HTTP/1.1\r\nHost: x\r\nX-API-Key: "
                + writer.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body,
            )
            assert answer.startswith(b"HTTP/1.1 400 "), (path, answer[:200])
        for path in (b"/v1/../metrics", b"/v1/../internal/keys/verify"):
            answer = _raw(
                base,
                b"GET "
                + path
                + b" HTTP/1.1\r\nHost: x\r\nX-API-Key: "
                + ADMIN_KEY.encode()
                + b"\r\nConnection: close\r\n\r\n",
            )
            assert answer.startswith(b"HTTP/1.1 400 "), (path, answer[:200])
        labels = [
            k["label"] for k in httpx.get(f"{base}/v1/admin/keys", headers=admin).json()["items"]
        ]
        assert "stolen" not in labels
