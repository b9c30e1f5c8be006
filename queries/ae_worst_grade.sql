-- One row per patient per CTCAE term with at least one episode: the worst grade recorded for that term (CTCAE v4.0).
-- Each patient counts once per term at the worst grade; per-SOC and overall worst grades are aggregated from this view.
with final as (
    select
        a.patient_id,
        c.site_id,
        c.bclc_stage,
        c.child_pugh_class,
        a.soc,
        a.term,
        max(a.grade) as worst_grade,
        count(*) as n_episodes,
        bool_or(a.is_serious) as any_serious,
        bool_or(a.is_treatment_related) as any_related
    from stg_adverse_events a
    join cohort c using (patient_id)
    group by all
)
select * from final
