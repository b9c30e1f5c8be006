-- One row per patient per CTCAE term with at least one counted episode: the worst grade recorded for that term (CTCAE v4.0).
-- Each patient counts once per term at the worst grade; per-SOC and overall worst grades are the maximum over the
-- patient's rows. Episodes come from ae_episodes, so its episode filters (treatment-related only, serious only, onset
-- within N days of a session) choose which episodes count BEFORE the worst grade is taken.
-- The ae-incidence export takes the same worst grades in one query over ae_episodes (dashboard/exports/safety.py);
-- this view with dashboard/analytics/safety.py `incidence` is its independent reference (tests/test_safety_fast.py).
with final as (
    select
        patient_id,
        site_id,
        bclc_stage,
        child_pugh_class,
        soc,
        term,
        max(grade) as worst_grade,
        count(*) as n_episodes,
        bool_or(is_serious) as any_serious,
        bool_or(is_treatment_related) as any_related
    from ae_episodes
    group by patient_id, site_id, bclc_stage, child_pugh_class, soc, term
)
select * from final
