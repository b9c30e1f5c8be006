-- One row per enrolled patient: downsizing of the index lesion, the target lesion with the largest viable diameter at
-- baseline (the lowest lesion_id on a tie). best_pct_change = the smallest percent change of its viable diameter from
-- baseline over post-baseline visits up to and including the first PD (the window of the waterfall); null, with
-- not_evaluable_reason, when no target lesion has a baseline diameter > 0 or the index lesion is never measured after.
-- Stored in the order of best_pct_change (nulls last), then patient_id, so that the table's rowid is that order: the
-- downsizing export sorts a group's patients by rowid (integers) instead of by change and text at every query.
-- Materialized once per snapshot: every enrolled patient, no filter (filters never change these values);
-- `downsizing` keeps the patients of the current filter and scope.
with enrolled as (
    select patient_id, site_id
    from stg_patients
    where first_treatment_date <= snapshot_cutoff()
),

baseline as (
    select
        m.patient_id, m.lesion_id, m.viable_diameter_mm,
        row_number() over (partition by m.patient_id order by m.viable_diameter_mm desc, m.lesion_id) as size_rank
    from stg_lesion_measurements m
    join stg_lesions l using (patient_id, lesion_id)
    join enrolled c on c.patient_id = m.patient_id
    where l.is_target and m.visit = 'baseline' and m.viable_diameter_mm > 0
),

index_lesion as (
    select patient_id, lesion_id, viable_diameter_mm as baseline_diameter_mm
    from baseline
    where size_rank = 1
),

followup as (
    select
        x.patient_id, m.visit, i.imaging_date, m.viable_diameter_mm,
        100.0 * (m.viable_diameter_mm - x.baseline_diameter_mm) / x.baseline_diameter_mm as pct_change
    from index_lesion x
    join stg_lesion_measurements m on m.patient_id = x.patient_id and m.lesion_id = x.lesion_id
    join stg_imaging i on i.patient_id = m.patient_id and i.visit = m.visit
    left join best_response_all b on b.patient_id = x.patient_id and b.scope = 'overall'
    where m.visit <> 'baseline'
      and m.viable_diameter_mm is not null
      and (b.first_pd_date is null or i.imaging_date <= b.first_pd_date)
),

best as (
    select
        patient_id,
        count(*) as n_followup_measurements,
        min(pct_change) as best_pct_change,
        arg_min(viable_diameter_mm, (pct_change, imaging_date)) as best_diameter_mm,
        arg_min(visit, (pct_change, imaging_date)) as best_visit
    from followup
    group by patient_id
),

final as (
    select
        c.patient_id,
        c.site_id,
        x.lesion_id,
        x.baseline_diameter_mm,
        b.best_diameter_mm,
        b.best_pct_change,
        b.best_visit,
        coalesce(b.n_followup_measurements, 0) as n_followup_measurements,
        case when x.lesion_id is null then 'no baseline target diameter'
             when b.best_pct_change is null then 'no follow-up measurement' end as not_evaluable_reason
    from enrolled c
    left join index_lesion x using (patient_id)
    left join best b using (patient_id)
    order by b.best_pct_change asc nulls last, c.patient_id asc
)

select * from final
