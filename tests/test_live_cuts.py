"""New data cuts go live while the dashboard runs (issue 18, item 3), against a real `python app.py`:
a cut written slowly (tables first, manifest last) is never served before it is complete, every
page then offers it without a restart, an open page says a newer cut is available and keeps
showing the cut it drew until asked, and a corrupt cut is rejected, logged and listed."""
import json
import os
import shutil
import threading
import time
import urllib.request

import pyarrow.parquet as pq
import pytest

from browser_helpers import ARTIFACTS
from conftest import running_app
from fixtures import mini_registry, write_snapshot

POLL_SECONDS = "1"


def layout_values(url: str, path: str = "/") -> dict:
    """The shell's values the layout of `path` is served with: {component id: props}."""
    request = urllib.request.Request(url + "/_dash-layout", headers={"Referer": url + path})
    with urllib.request.urlopen(request, timeout=30) as response:
        tree = json.load(response)
    found = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict) and isinstance(props.get("id"), str):
                found[props["id"]] = props
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(tree)
    return found


def offered(url: str) -> tuple[str, list[tuple[str, bool]]]:
    """(the data cut a page opened now shows, [(cut, disabled), ...] its data-cut menu offers)."""
    select = layout_values(url)["snapshot-select"]
    return select.get("value"), [(o["value"], bool(o.get("disabled"))) for o in select.get("options", [])]


def copy_slowly(built, target, pause: float = 0.15):
    """Copy a built snapshot folder into the data root as a slow copy would: every table in two
    halves with pauses between, the manifest last."""
    target.mkdir()
    for f in sorted(built.glob("*.parquet")):
        raw = f.read_bytes()
        with open(target / f.name, "wb") as out:
            out.write(raw[: len(raw) // 2])
            out.flush()
            time.sleep(pause)
            out.write(raw[len(raw) // 2:])
        time.sleep(pause)
    shutil.copy(built / "manifest.json", target / "manifest.json")


@pytest.fixture
def live_root(tmp_path):
    root = tmp_path / "live"
    write_snapshot(root, "2024-12-31", mini_registry())
    write_snapshot(root, "2025-03-31", mini_registry())
    return root


def env_with_poll():
    return {**os.environ, "REGISTRY_CUT_POLL_SECONDS": POLL_SECONDS}


def test_a_cut_written_slowly_is_never_served_before_its_manifest_then_offered_without_restart(live_root, tmp_path):
    staging = tmp_path / "staging"
    built = write_snapshot(staging, "2025-06-30", mini_registry())
    with running_app(live_root, tmp_path / "server.log", env=env_with_poll()) as url:
        assert offered(url) == ("2025-03-31", [("2025-03-31", False), ("2024-12-31", False)])
        target = live_root / "snapshots" / "2025-06-30"
        writer = threading.Thread(target=copy_slowly, args=(built, target))
        writer.start()
        seen_during_copy = []
        while writer.is_alive():
            answer = offered(url)
            if not (target / "manifest.json").exists():     # answered before the manifest arrived
                seen_during_copy.append(answer)
        writer.join()
        # nothing of the new cut while its files were arriving (the copy took a few seconds)
        assert len(seen_during_copy) >= 3
        assert all(shown == "2025-03-31" and "2025-06-30" not in [c for c, _ in cuts]
                   for shown, cuts in seen_during_copy), [a for a in seen_during_copy if a[0] != "2025-03-31"]
        # once the manifest is there: offered and shown at once, by the same running process
        shown, cuts = offered(url)
        assert shown == "2025-06-30"
        assert cuts[0] == ("2025-06-30", False)


def corrupt_copy(built, target):
    """A copy of a built cut whose adverse_events grade 7 breaks the contract (grade 1..5), with a
    manifest that matches its files (checksums and row counts): only validation can reject it."""
    import hashlib
    shutil.copytree(built, target)
    path = target / "adverse_events.parquet"
    table = pq.read_table(path)
    grades = table.column("grade").to_pylist()
    grades[0] = 7
    import pyarrow as pa
    table = table.set_column(table.schema.get_field_index("grade"), table.schema.field("grade"),
                             pa.array(grades, type=table.schema.field("grade").type))
    pq.write_table(table, path)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["snapshot_id"] = target.name
    manifest["cutoff_date"] = target.name[:10]
    manifest["tables"]["adverse_events"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (target / "manifest.json").write_text(json.dumps(manifest))


def test_a_corrupt_new_cut_is_rejected_logged_and_listed_and_latest_stays_up(live_root, tmp_path):
    staging = tmp_path / "staging"
    built = write_snapshot(staging, "2025-06-30", mini_registry())
    log_path = tmp_path / "server.log"
    with running_app(live_root, log_path, env=env_with_poll()) as url:
        corrupt_copy(built, live_root / "snapshots" / "2025-09-30")
        shown, cuts = offered(url)
        assert shown == "2025-03-31"                            # the last good cut, still served
        assert ("2025-09-30", True) in cuts                     # listed in the menu, disabled
        label = [o["label"] for o in layout_values(url)["snapshot-select"]["options"]
                 if o["value"] == "2025-09-30"][0]
        assert "rejected" in label
    text = log_path.read_text()
    assert "data cut 2025-09-30 rejected, not served" in text
    assert "grade" in text.split("data cut 2025-09-30 rejected")[1].splitlines()[0]
    assert text.count("data cut 2025-09-30 rejected") == 1      # once per process, not per request


def test_a_page_sent_to_the_latest_cut_is_not_pinned_back_before_its_banner_answers(live_root, monkeypatch, dash_app):
    """The poll once pinned a page back to the older cut it had just left: after "Show the latest
    cut", the state follows the latest again while the store of the cut shown still held the old
    cut until the banner answered (seen in Chromium under load). The banner now records a cut only
    for a page following the latest, and the poll pins only then."""
    from dashboard.callbacks import shell
    from dashboard import state as request_state
    monkeypatch.setenv("REGISTRY_DATA", str(live_root))
    latest = request_state.resolve("latest")
    assert latest.snapshot_id == "2025-03-31"
    *_, shown_named = shell._banner({"snapshot": "2024-12-31", "query": "bclc=B"})
    *_, shown_following = shell._banner({"snapshot": "latest", "query": "bclc=B"})
    assert (shown_named, shown_following) == ("", "2025-03-31")
    following = {"snapshot": "latest", "query": "bclc=B"}
    # just sent from the named older cut to the latest: the banner has not answered yet
    assert shell.pinned_search(shown_named, following, "?bclc=B", latest) is None
    # drawn on the latest, which is still the latest: nothing to pin
    assert shell.pinned_search(shown_following, following, "?bclc=B", latest) is None
    # drawn on a cut that a newer one has since replaced: pinned to it, filters kept
    assert shell.pinned_search("2024-12-31", following, "?bclc=B", latest) == "?bclc=B&snapshot=2024-12-31"
    # a page naming its cut is never pinned
    assert shell.pinned_search("2024-12-31", {"snapshot": "2024-12-31", "query": ""}, "", latest) is None


# --- in Chromium -------------------------------------------------------------------------------
def marker_text(page) -> str:
    return page.evaluate("""() => { const m = document.getElementById('cut-marker');
                                    return m && m.style.display !== 'none' ? m.innerText : ''; }""")


def wait_cutoff(page, cut: str):
    page.wait_for_function("""(cut) => { const b = document.getElementById('banner-cutoff');
                                         return b !== null && b.innerText.includes(cut); }""", arg=cut)


def wait_for(page, condition, timeout_s: float = 20):
    deadline = time.time() + timeout_s
    while not condition() and time.time() < deadline:
        page.wait_for_timeout(200)
    return condition()


def test_an_open_page_says_a_newer_cut_is_available_and_keeps_its_cut_until_asked(live_root, tmp_path, page):
    staging = tmp_path / "staging"
    built = write_snapshot(staging, "2025-06-30", mini_registry())
    with running_app(live_root, tmp_path / "server.log", env=env_with_poll()) as url:
        page.goto(url + "/survival?bclc=B")
        wait_cutoff(page, "2025-03-31")
        page.wait_for_timeout(2500)                       # a few polls: nothing new, no marker
        assert marker_text(page) == ""
        shutil.copytree(built, live_root / "snapshots" / "2025-06-30")
        assert wait_for(page, lambda: "newer data cut is available" in marker_text(page)), marker_text(page)
        text = marker_text(page)
        assert "2025-06-30" in text and "older cut 2025-03-31" in text
        # the page is pinned to the cut it drew: its URL names it, the banner still shows it
        assert "snapshot=2025-03-31" in page.url and "bclc=B" in page.url
        assert "2025-03-31" in page.inner_text("#banner-cutoff")
        options = page.evaluate("() => Array.from(document.querySelectorAll('#snapshot-select')).length")
        assert options == 1
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "newer-cut.png"))
        page.click("#show-latest-cut")
        wait_cutoff(page, "2025-06-30")
        assert wait_for(page, lambda: marker_text(page) == "")
        assert "snapshot=" not in page.url and "bclc=B" in page.url
        assert page.console_errors == []


@pytest.mark.parametrize("path", ["/", "/survival", "/safety"])
def test_an_older_cut_is_marked_on_every_page(live_root, tmp_path, page, path):
    with running_app(live_root, tmp_path / "server.log", env=env_with_poll()) as url:
        page.goto(url + path + "?snapshot=2024-12-31")
        wait_cutoff(page, "2024-12-31")
        assert wait_for(page, lambda: "newer data cut is available: 2025-03-31" in marker_text(page)), marker_text(page)
        page.goto(url + path)
        wait_cutoff(page, "2025-03-31")
        page.wait_for_timeout(1500)
        assert marker_text(page) == ""
        assert page.console_errors == []
