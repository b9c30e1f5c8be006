"""The filter value object: URL and command-line forms, errors, and binding."""
import datetime as dt

import pytest

from dashboard.filters import FilterError, Filters


def test_url_round_trip():
    f, problems = Filters.from_query("?site=S01,S02&bclc=B,C&age_min=50", known_sites=["S01", "S02"])
    assert problems == []
    assert f.site == ("S01", "S02") and f.bclc == ("B", "C") and f.age_min == 50
    assert f.to_query() == "site=S01,S02&bclc=B,C&age_min=50"
    assert Filters.from_query(f.to_query())[0] == f


def test_cli_form_equals_url_form():
    cli = Filters.from_cli(["site=S01,S02", "bclc=B,C", "enrolled_from=2023-01-01"])
    url, _ = Filters.from_query("site=S01,S02&bclc=B,C&enrolled_from=2023-01-01")
    assert cli == url and cli.enrolled_from == dt.date(2023, 1, 1)


@pytest.mark.parametrize("item, message", [
    ("colour=red", "unknown filter 'colour'"),
    ("bclc=E", "bclc: unknown value 'E'"),
    ("age_min=old", "not a whole number"),
    ("enrolled_to=2024-13-01", "not a date"),
    ("site=S99", "site: unknown value 'S99'"),
    ("bclc", "expected KEY=VALUE"),
])
def test_cli_rejects_unknown_keys_and_values(item, message):
    with pytest.raises(FilterError, match=message):
        Filters.from_cli([item], known_sites=["S01"])


def test_url_is_lenient_drops_only_the_bad_key_and_says_why():
    f, problems = Filters.from_query("bclc=B,Z&sex=F&age_min=70&age_max=60")
    assert f.bclc == () and f.sex == ("F",) and f.age_min is None
    assert any("bclc" in p for p in problems) and any("age_min" in p for p in problems)


def test_page_options_in_the_url_are_not_filters():
    f, problems = Filters.from_query("endpoint=pfs&snapshot=2024-03-31&bclc=B")
    assert problems == [] and f.bclc == ("B",)


def test_as_variables_binds_lists_and_ints():
    v = Filters(ecog=("0", "1"), site=("S01",)).as_variables()
    assert v["f_ecog"] == ["0", "1"] and v["f_site"] == ["S01"] and v["f_bclc"] is None


def test_without_removes_one_value():
    f = Filters(bclc=("B", "C"), age_min=40)
    assert f.without("bclc", "B").bclc == ("C",)
    assert f.without("age_min").age_min is None


# --- bounds (issue 14 item 10: mutants that survived) -------------------------------------------
@pytest.mark.parametrize("query", ["age_min=60&age_max=60", "enrolled_from=2024-03-01&enrolled_to=2024-03-01"])
def test_equal_lower_and_upper_bounds_are_a_valid_filter(query):
    """Bounds are inclusive (README: "Age ≥", "Age ≤"; enrolled from/to), so min == max selects the
    patients at exactly that age or date: accepted by the URL and the command line, no problem."""
    f, problems = Filters.from_query(query)
    assert problems == [] and f.to_query() == query
    assert Filters.from_cli(query.split("&")) == f


@pytest.mark.parametrize("query, problem", [
    ("age_min=61&age_max=60", "age_min (61) is greater than age_max (60)"),
    ("enrolled_from=2024-03-02&enrolled_to=2024-03-01", "enrolled_from (2024-03-02) is after enrolled_to (2024-03-01)"),
])
def test_crossed_bounds_are_dropped_by_one_unit(query, problem):
    f, problems = Filters.from_query(query)
    assert f.is_empty() and any(problem in p for p in problems)
    with pytest.raises(FilterError, match=problem.split(" (")[0]):
        Filters.from_cli(query.split("&"))


@pytest.mark.parametrize("value, ok", [("0", True), ("120", True), ("121", False), ("-1", False), ("1200", False)])
def test_age_bounds_are_whole_years_from_0_to_120(value, ok):
    """The accepted range of an age bound is 0..120 (the message dashboard/filters.py gives, checked
    on both sides of each end); the contract's ages are 18..100, so 121 is never a real bound."""
    for key in ("age_min", "age_max"):
        if ok:
            assert getattr(Filters.from_cli([f"{key}={value}"]), key) == int(value)
        else:
            with pytest.raises(FilterError, match=rf"{key}: {value} is outside 0\.\.120"):
                Filters.from_cli([f"{key}={value}"])
            f, problems = Filters.from_query(f"{key}={value}")
            assert getattr(f, key) is None and problems == [f"{key}: {value} is outside 0..120"]
