"""The local stack's own routes for the dashboard page: its static files and its dev token (no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.test import Client

from local.stack.auth import verify_token
from local.stack.gateway import WEB_DIR, Gateway

pytestmark = pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")

SECRET = "web-routes-secret"


def gateway(web_dir: Path | None = WEB_DIR) -> Client:
    app = Gateway([], {}, jwt_secret=SECRET, api_id="api", account_id="123456789012", health=dict, web_dir=web_dir)
    return Client(app)


def test_the_page_is_served_at_the_root_with_its_files() -> None:
    client = gateway()
    page = client.get("/")
    assert page.status_code == 200
    assert page.content_type == "text/html; charset=utf-8"
    html = page.get_data(as_text=True)
    assert '<script src="/static/app.js" defer></script>' in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert (response.status_code, response.content_type) == (200, f"{kind}; charset=utf-8")
        assert response.get_data() == (WEB_DIR / name).read_bytes()
    assert client.head("/static/app.js").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../gateway.py",
        "/static/%2e%2e/stack/gateway.py",
        "/static/..%2fstack%2fauth.py",
        "/static/missing.js",
        "/static/",
        "/static/index.py",
        "/nowhere",
    ],
)
def test_nothing_outside_the_page_is_served(path: str) -> None:
    response = gateway().get(path)
    assert response.status_code == 404
    assert response.get_json() == {"message": "Not Found"}


def test_without_a_page_the_root_is_api_gateways_404(tmp_path: Path) -> None:
    assert gateway(web_dir=None).get("/").status_code == 404
    assert gateway(web_dir=tmp_path).get("/").status_code == 404  # no index.html there


def test_post_to_the_page_is_not_found() -> None:
    assert gateway().post("/").status_code == 404


def test_the_token_route_signs_a_token_for_one_project() -> None:
    response = gateway().get("/_local/token?project=shop-1")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["project"] == "shop-1"
    claims = verify_token(f"Bearer {body['token']}", SECRET)
    assert claims is not None
    assert claims["projects"] == ["shop-1"]
    assert claims["exp"] > claims["iat"]
    assert verify_token(f"Bearer {body['token']}", "another-secret") is None


@pytest.mark.parametrize("query", ["", "?project=", "?project=a/b", "?project=" + "x" * 129, "?project=%20p"])
def test_the_token_route_refuses_an_invalid_project_id(query: str) -> None:
    response = gateway().get(f"/_local/token{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("path", ["/static/../secret.js", "/static/%2e%2e/secret.js", "/static/..%2fsecret.js"])
def test_a_page_file_outside_the_folder_is_not_served(tmp_path: Path, path: str) -> None:
    web_dir = tmp_path / "web"
    web_dir.mkdir()
    (web_dir / "index.html").write_text("<!doctype html>")
    (tmp_path / "secret.js").write_text("secret")
    client = gateway(web_dir)
    assert client.get("/").status_code == 200
    assert client.get(path).status_code == 404
