"""The shell's layout is served with the page being opened (issue 17: its cards are asked for with
the shell's own callbacks, not after the router's answer), told by the Referer of the browser's
/_dash-layout request; the router then leaves the page it holds."""
import json

import pytest

from dashboard import ids
from dashboard.callbacks import shell


def layout_json(client, referrer=None) -> dict:
    headers = {"Referer": referrer} if referrer else {}
    r = client.get("/_dash-layout", headers=headers)
    assert r.status_code == 200
    return r.get_json()


def find(node, ident):
    """The component with this id in a layout's JSON."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == ident:
            return node
        for value in node.get("props", {}).values():
            found = find(value, ident)
            if found is not None:
                return found
    elif isinstance(node, list):
        for child in node:
            found = find(child, ident)
            if found is not None:
                return found
    return None


@pytest.fixture
def synthetic(synthetic_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(synthetic_root))


def test_the_layout_holds_the_page_of_the_referer_with_its_options(dash_app, synthetic):
    client = dash_app.server.test_client()
    layout = layout_json(client, "http://localhost/survival?bclc=B&endpoint=pfs")
    assert find(layout, ids.ROUTED)["props"]["data"] == "/survival"
    assert "km-curve" in json.dumps(find(layout, ids.PAGE_CONTENT))         # the Survival page's cards
    endpoint = find(layout, {"type": "page-option", "key": "endpoint"})
    assert endpoint["props"]["value"] == "pfs"                       # the page option of the link
    assert find(layout, ids.PAGE_DEFAULTS)["props"]["data"]["defaults"]["endpoint"] == "os"
    assert find(layout, ids.PAGE_TITLE)["props"]["data"].startswith("Survival")
    # the shell as the server step sets it from the URL: the controls, the data-cut list
    assert find(layout, ids.F_BCLC)["props"]["value"] == ["B"]
    assert find(layout, ids.SNAPSHOT)["props"]["value"] == find(layout, ids.SNAPSHOT)["props"]["options"][0]["value"]


def test_a_bad_link_is_served_with_its_message_and_the_values_that_could_be_used(dash_app, synthetic):
    client = dash_app.server.test_client()
    layout = layout_json(client, "http://localhost/survival?bclc=Z&sex=F&snapshot=1999-01-01")
    message = json.dumps(find(layout, ids.URL_MESSAGE))
    assert "1999-01-01" in message and "bclc" in message
    assert find(layout, ids.F_BCLC)["props"]["value"] == [] and find(layout, ids.F_SEX)["props"]["value"] == ["F"]
    cuts = [o["value"] for o in find(layout, ids.SNAPSHOT)["props"]["options"]]
    assert "1999-01-01" not in cuts and find(layout, ids.SNAPSHOT)["props"]["value"] == cuts[0]


def test_no_page_without_a_same_origin_referer(dash_app):
    client = dash_app.server.test_client()
    for referrer in (None, "http://elsewhere.example/survival"):
        layout = layout_json(client, referrer)
        assert find(layout, ids.ROUTED)["props"].get("data") is None
        assert find(layout, ids.PAGE_CONTENT)["props"].get("children") is None


def test_a_page_that_fails_to_draw_leaves_the_shell_served(dash_app, monkeypatch, caplog):
    def broken(path, search):
        raise RuntimeError("a page layout failed")
    monkeypatch.setattr(shell, "render_page", broken)
    client = dash_app.server.test_client()
    layout = layout_json(client, "http://localhost/survival")
    assert find(layout, ids.ROUTED)["props"].get("data") is None           # the router draws it, or says why
    assert find(layout, ids.BANNER_COUNT) is not None
    assert "could not be drawn" in caplog.text


def test_the_router_leaves_the_page_the_layout_holds_and_draws_another(dash_app):
    from dashboard.replay import Session, callback_body
    session = Session(dash_app)
    route = next(d for d in session.deps if d["output"].startswith(f"..{ids.PAGE_CONTENT}.children"))

    def post(routed):
        body = callback_body(route, {"url.pathname": "/survival", "url.search": "", f"{ids.ROUTED}.data": routed},
                             "url.pathname")
        return session.client.post("/_dash-update-component", json=body)
    held = post("/survival")
    assert held.status_code == 204 or ids.PAGE_CONTENT not in (held.get_json() or {}).get("response", {})
    drawn = post("/")
    assert drawn.status_code == 200
    response = drawn.get_json()["response"]
    assert response[ids.ROUTED]["data"] == "/survival" and "km-curve" in json.dumps(response[ids.PAGE_CONTENT])


def test_with_no_cut_to_serve_the_page_is_still_served(dash_app, tmp_path, monkeypatch):
    """The demo serves synthetic cuts only: with a registry's real cut alone there is none to
    serve, and the page comes without the shell's values (the server step then says so)."""
    from fixtures import mini_registry, write_snapshot
    write_snapshot(tmp_path, "2024-12-31", mini_registry(), source="redcap")
    monkeypatch.setenv("REGISTRY_DATA", str(tmp_path))
    layout = layout_json(dash_app.server.test_client(), "http://localhost/survival")
    assert find(layout, ids.ROUTED)["props"]["data"] == "/survival"
    assert find(layout, ids.SNAPSHOT)["props"]["options"] == []
