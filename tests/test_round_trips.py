"""Round trips of one filter change, per page (issue 17): the requests to
/_dash-update-component that one BCLC choice in the filter panel causes, in headless Chromium
against `python app.py`, grouped into waves as benchmarks/browser.py defines them (a new wave
starts when no request has been in flight for more than 5 ms), and the longest chain of requests
each waiting on the one before. The test fails when a change takes more round trips than the bound.
"""
import pytest

from benchmarks import browser as bench

pytestmark = pytest.mark.browser

# The design (issue 17): a filter change or a page option reaches every output of the page in one
# wave. The browser computes the cards' state and the page options' URL itself (assets/shell.js),
# so the cards, the banner and the shell's server callback are sent together. Before it, a
# change took three waves, chained: the shell's sync, then the banner, chips and page options,
# then the figures, which the renderer held back until the page options' callback had answered.
MAX_WAVES = 1
MAX_CHAIN = 1
# The renderer may send one update's requests over two ticks of its main thread, a few ms apart
# (measured: 5.5 ms between the Tumour response page's 2nd and 3rd card on "back", the first two
# already answered). A round trip that cards wait for leaves far more with nothing in flight:
# 150-400 ms before the redesign. Waves closer than this are counted as one.
JITTER_MS = 50


def merged(waves: list[dict]) -> list[dict]:
    """The waves, those that start within JITTER_MS of the previous one's last answer joined."""
    out = []
    for w in waves:
        if out and w["sent_ms"] - out[-1]["arrived_ms"] <= JITTER_MS:
            out[-1] = {**out[-1], "arrived_ms": max(out[-1]["arrived_ms"], w["arrived_ms"]),
                       "callbacks": out[-1]["callbacks"] + w["callbacks"]}
        else:
            out.append(w)
    return out
ONE_WAVE_ACTIONS = ("open", "shared link", "dropdown", "slider", "chip", "clear all", "page option", "back")


@pytest.fixture(scope="module")
def bench_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("round-trips")
    bench.generate(root / "data", 40, last_cut_only=True, quiet=True)
    cache = root / "cache"
    cache.mkdir(mode=0o700)
    with bench.running_app(root / "data", cache, root / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def tab(browser, bench_app):
    t = bench.Tab(browser, bench_app, quiet_ms=150)
    yield t
    t.close()


@pytest.mark.parametrize("path", [p for p in bench.PAGE_OPTIONS])
def test_a_filter_change_or_page_option_is_one_round_trip(tab, path):
    for action in bench.actions_for(path, has_second_cut=False):      # the benchmark's sequence
        m = tab.act(action, path)
        name = action.name
        if name not in ONE_WAVE_ACTIONS:
            continue                # opening a page: the router's answer, then the page's cards
        detail = "\n".join(f"  wave {i + 1}: sent {w['sent_ms']} ms, arrived {w['arrived_ms']} ms: {w['callbacks']}"
                           for i, w in enumerate(m["wave_detail"]))
        assert m["requests"] >= 1, f"{path} {name}: no request\n{detail}"
        # the cards: every callback that reads the filter state. The shell's server step and the
        # router hold none of them back, but the browser may send them a little before or after
        card_waves = merged([w for w in m["wave_detail"] if any(w["read_state"])])
        assert len(card_waves) <= MAX_WAVES, \
            f"{path} {name}: cards in {len(card_waves)} waves (bound {MAX_WAVES}):\n{detail}"
        assert m["chain"] <= MAX_CHAIN, \
            f"{path} {name}: a chain of {m['chain']} round trips (bound {MAX_CHAIN}):\n{detail}"
    assert tab.errors == []


# --- the definitions, on made-up requests (times in ms) ---------------------------------------
def req(sent, arrived, outputs=(), inputs=(), answered=None):
    return {"sent": sent, "arrived": arrived, "answered": answered if answered is not None else arrived,
            "outputs": list(outputs), "inputs": list(inputs), "changed": []}


def test_waves_are_separated_by_time_with_nothing_in_flight():
    a = req(0, 20)
    b = req(10, 30)          # sent while a is in flight: same wave
    c = req(33, 40)          # 3 ms after the last arrival: same wave
    d = req(200, 260)        # 160 ms with nothing in flight: a second wave
    e = req(262, 300)
    assert [len(w) for w in bench.waves_of([e, d, c, b, a])] == [3, 2]


def test_the_chain_follows_outputs_into_inputs_of_later_requests():
    sync = req(0, 20, outputs=["url.search", "filter-state.data"], inputs=["f-bclc.value"])
    banner = req(100, 130, outputs=["banner-count.children"], inputs=["filter-state.data"])
    options = req(100, 120, outputs=["page-option.value"], inputs=["url.search"])
    figure = req(125, 300, outputs=["accrual.figure"], inputs=["filter-state.data", "page-option.value"])
    unrelated = req(310, 320, outputs=["x.children"], inputs=["y.value"])
    assert bench.chain_length([sync, banner, options, figure, unrelated]) == 3
    assert bench.chain_length([sync, banner]) == 2
    assert bench.chain_length([]) == 0


def test_union_length_counts_overlaps_once():
    assert bench.union_length([(0, 10), (5, 15), (20, 25)]) == 20
