"""The data seam: snapshot schemas, bound filters and scope, a cursor per thread."""
import threading

import pytest

from dashboard import data
from dashboard.data import ALL_SITES, Scope
from dashboard.filters import Filters


def test_values_are_bound_never_formatted(mini_snapshot):
    # a hostile value is just a site id that matches nothing
    hostile = Filters(site=("S01') or true --",))
    assert len(data.query("cohort", mini_snapshot, hostile)) == 0


def test_scope_restricts_every_view(mini_snapshot):
    scope = Scope(("S02",))
    assert set(data.query("cohort", mini_snapshot, scope=scope).site_id) == {"S02"}
    assert set(data.query("enrollment", mini_snapshot, scope=scope).site_id) == {"S02"}
    # a filter cannot widen the scope
    wider = data.query("cohort", mini_snapshot, Filters(site=("S01", "S02")), scope)
    assert set(wider.site_id) == {"S02"}


def test_variables_do_not_leak_between_queries(mini_snapshot):
    assert len(data.query("cohort", mini_snapshot, Filters(bclc=("C",)))) == 2
    assert len(data.query("cohort", mini_snapshot)) == 5


def test_threads_get_their_own_cursor_and_filters(mini_snapshot):
    results, errors = {}, []

    def work(name, filters):
        try:
            for _ in range(20):
                results[name] = len(data.query("cohort", mini_snapshot, filters))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=("all", Filters())),
               threading.Thread(target=work, args=("c", Filters(bclc=("C",)))),
               threading.Thread(target=work, args=("s1", Filters(site=("S01",))))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert results == {"all": 5, "c": 2, "s1": 3}


def test_unknown_query_is_a_clear_error(mini_snapshot):
    with pytest.raises(data.QueryError, match="no query named 'nope'"):
        data.query("nope", mini_snapshot)


def test_views_are_created_in_dependency_order():
    order = data.view_order()
    assert order.index("stg_patients") < order.index("cohort") < order.index("patient_endpoints")
    assert order.index("tumour_burden_all") < order.index("best_response_all") < order.index("best_response")
    assert order.index("best_response") < order.index("patient_summary")


def test_materialized_views_are_tables_and_filters_still_apply(mini_snapshot):
    """Filter-independent per-patient views are computed once per snapshot into tables; the
    views the pages read keep only the patients of the filter."""
    assert {"tumour_burden_all", "best_response_all"} <= data.materialized_views()
    kinds = dict(data.execute("select table_name, table_type from information_schema.tables "
                              "where table_schema = current_schema()", mini_snapshot).values.tolist())
    assert kinds["best_response_all"] == "BASE TABLE" and kinds["best_response"] == "VIEW"
    assert set(data.query("best_response", mini_snapshot, Filters(bclc=("C",))).patient_id) == {"P2", "P4"}
    assert set(data.query("tumour_burden", mini_snapshot, Filters(site=("S02",))).patient_id) == {"P3", "P4"}


def test_a_materialized_view_may_not_read_the_filters(monkeypatch):
    files = dict(data.view_files())
    files["bad"] = "-- One row per x\n-- Materialized once per snapshot\nwith final as (select * from cohort) select * from final"
    monkeypatch.setattr(data, "view_files", lambda: files)
    data.materialized_views.cache_clear()
    try:
        with pytest.raises(data.QueryError, match="reads the filters"):
            data.materialized_views()
    finally:
        monkeypatch.undo()
        data.materialized_views.cache_clear()


def test_validation_reports_are_cached_on_disk_by_fingerprint(mini_root, tmp_path, monkeypatch):
    from dashboard.cache import DOC_PREFIX
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path))
    snap = data.resolve("latest", mini_root)
    data._reports.clear()
    first = data.report_for(snap)
    files = list(tmp_path.glob(f"{DOC_PREFIX}validation-{snap.snapshot_id}-*.json"))
    assert len(files) == 1
    data._reports.clear()
    monkeypatch.setattr(data, "validate_folder", lambda path: pytest.fail("validated again despite the cache"))
    assert data.report_for(snap).summary() == first.summary()


def test_extra_variables_are_reset_for_the_next_query(mini_snapshot):
    first = data.execute("select getvariable('ae_related_only') as v", mini_snapshot, variables={"ae_related_only": True})
    assert bool(first.v.iloc[0]) is True
    second = data.execute("select getvariable('ae_related_only') as v", mini_snapshot)
    assert second.v.isna().all()


def test_value_is_the_first_value_of_the_query_bound_like_execute(mini_snapshot):
    """data.value: a count without a DataFrame, with the filters and scope bound as execute binds
    them; None when the query has no row."""
    for filters, scope in ((Filters(), ALL_SITES), (Filters(bclc=("C",)), ALL_SITES), (Filters(), Scope(("S01",)))):
        frame = data.execute("select count(*) as n from cohort", mini_snapshot, filters, scope)
        assert data.value("select count(*) as n from cohort", mini_snapshot, filters, scope) == frame["n"].iloc[0]
    assert data.value("select patient_id from cohort where false", mini_snapshot) is None
