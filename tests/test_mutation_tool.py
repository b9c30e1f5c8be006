"""The SQL mutation operators (scripts/mutation/sqlmut.py) on small hand-written views: each
expected mutant below is written out by hand from the operator's one-line definition."""
from scripts.mutation.sqlmut import mask, mutants

VIEW = """-- One row per patient. A comment with least( and = and 'quotes' that must not be mutated.
with base as (
    select p.patient_id, coalesce(p.death_date, p.last_alive) as end_date
    from stg_patients p
    left join scans s using (patient_id)
    where p.first_treatment_date <= snapshot_cutoff()
      and p.visit <> 'baseline'
),

final as (
    select patient_id, least(a, b) as x,
           case when a is null then 'none' when a > 7 then 'big' else 'small' end as grp,
           min(d) filter (where not flag) as m
    from base
    order by x asc
)

select * from final
"""


def diffs():
    return {(m.operator, m.after.strip()) for m in mutants(VIEW)}


def test_comments_and_string_literals_are_masked_with_their_length_kept():
    masked = mask("select 'a=b' -- x < y\n")
    assert len(masked) == len("select 'a=b' -- x < y\n")
    assert "=" not in masked and "<" not in masked


def test_every_operator_gives_the_hand_written_mutant():
    d = diffs()
    expected = {
        ("least-greatest", "select patient_id, greatest(a, b) as x,"),
        ("coalesce-swap", "select p.patient_id, coalesce(p.last_alive, p.death_date) as end_date"),
        ("left-join", "join scans s using (patient_id)"),
        ("lt-le", "where p.first_treatment_date < snapshot_cutoff()"),
        ("del-condition", "where true"),
        ("eq-ne", "and p.visit = 'baseline'"),
        ("and-or", "or p.visit <> 'baseline'"),
        ("gt-ge", "case when a is null then 'none' when a >= 7 then 'big' else 'small' end as grp,"),
        ("int-literal", "case when a is null then 'none' when a > 8 then 'big' else 'small' end as grp,"),
        ("int-literal", "case when a is null then 'none' when a > 6 then 'big' else 'small' end as grp,"),
        ("drop-not", "case when a is not null then 'none' when a > 7 then 'big' else 'small' end as grp,"),
        ("case-order", "case when a > 7 then 'big' when a is null then 'none' else 'small' end as grp,"),
        ("min-max", "max(d) filter (where not flag) as m"),
        ("drop-filter", "min(d) as m"),
        ("drop-not", "min(d) filter (where flag) as m"),
        ("asc-desc", "order by x desc"),
    }
    assert expected <= d, expected - d


def test_a_deleted_condition_line_is_gone_and_the_view_still_reads():
    deleted = [m for m in mutants(VIEW) if m.operator == "del-condition" and m.after == ""]
    assert len(deleted) == 1
    assert "p.visit <> 'baseline'" not in deleted[0].text
    assert "where p.first_treatment_date <= snapshot_cutoff()\n),\n" in deleted[0].text


def test_nothing_in_comments_or_strings_is_mutated_and_no_mutant_is_the_original():
    for m in mutants(VIEW):
        assert m.text != VIEW
        assert m.text.splitlines()[0] == VIEW.splitlines()[0]
        assert m.text.count("'") in (VIEW.count("'"), VIEW.count("'") - 2)    # a deleted line takes one literal


def test_a_simple_case_is_not_reordered_and_between_keeps_its_and():
    sql = ("select case r when 'CR' then 1 when 'PR' then 2 end as k,\n"
           "       min(x) over (order by d rows between unbounded preceding and 1 preceding) as n\nfrom t\n")
    ops = [(m.operator, m.after) for m in mutants(sql)]
    assert not [o for o in ops if o[0] == "case-order"]
    assert not [o for o in ops if o[0] == "and-or"]
