-- One row per response scope per patient per swimmer-plot mark: each DEB-TACE session, each post-baseline scan (with the
-- scope's recorded response), the scope's first progression (PD), and the end of the lane (death, or last contact).
-- A lane runs from the first DEB-TACE (day 0) to death_date, else last_known_alive_date; day = calendar days from day 0.
-- Materialized once per snapshot: every enrolled patient, no filter (filters never change these values);
-- `swimmer_events` keeps the patients of the current filter and scope.
with scopes as (
    select 'overall' as scope union all select 'local'
),

lanes as (
    select
        sc.scope, c.patient_id, c.site_id, c.bclc_stage, c.first_treatment_date,
        coalesce(c.death_date, c.last_known_alive_date) as end_date,
        case when c.death_date is not null then 'died'
             when c.off_study_date is not null then 'off study'
             else 'alive on study' end as end_status
    from cohort_all c
    cross join scopes sc
),

marks as (
    select l.scope, l.patient_id, 'session' as event, t.treatment_date as event_date,
           t.session_number, null::varchar as visit, null::varchar as response
    from lanes l
    join stg_treatments t using (patient_id)
    union all
    select l.scope, l.patient_id, 'scan', i.imaging_date, null, i.visit,
           case when l.scope = 'overall' then i.overall_response else i.local_response end
    from lanes l
    join stg_imaging i using (patient_id)
    where i.visit <> 'baseline'
    union all
    select b.scope, b.patient_id, 'first_pd', b.first_pd_date, null, null, 'PD'
    from best_response_all b
    where b.first_pd_date is not null
    union all
    select scope, patient_id, case when end_status = 'died' then 'death' else 'last_contact' end,
           end_date, null, null, null
    from lanes
),

final as (
    select
        l.scope, l.patient_id, l.site_id, l.bclc_stage, b.bor,
        (l.end_date - l.first_treatment_date)::integer as time_on_study_days,
        l.end_status,
        m.event, m.event_date,
        (m.event_date - l.first_treatment_date)::integer as day,
        m.session_number, m.visit, m.response
    from lanes l
    join marks m using (scope, patient_id)
    join best_response_all b using (scope, patient_id)
    -- stored in this order: the lanes' end marks of one scope (the swimmer's lane order) sit together
    order by l.scope, m.event, l.patient_id, day
)

select * from final
