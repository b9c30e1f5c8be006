-- One row per response scope per patient per post-baseline visit with a complete sum of target diameters and a baseline
-- sum > 0, for every enrolled patient: the recorded response next to the target-lesion response implied by the
-- measurements (mRECIST); definitions as in response_consistency.sql.
-- Materialized once per snapshot: every enrolled patient, no filter (the nadir window and the lesion checks never depend
-- on the filters); `response_consistency` keeps the current filter and scope.
with measured as (
    select
        t.*,
        min(t.sum_mm) over (partition by t.scope, t.patient_id order by t.imaging_date
                            rows between unbounded preceding and 1 preceding) as nadir_before_mm
    from tumour_burden_all t
    where t.sum_mm is not null
),

judged as (
    select
        m.scope, m.patient_id, m.visit, m.imaging_date,
        m.response as recorded,
        case when m.sum_mm = 0 then 'CR'
             when m.sum_mm >= 1.2 * m.nadir_before_mm and m.sum_mm > m.nadir_before_mm then 'PD'
             when m.sum_mm <= 0.7 * m.baseline_mm then 'PR'
             else 'SD' end as implied,
        m.sum_mm, m.baseline_mm, m.nadir_before_mm, m.pct_change,
        case when m.nadir_before_mm > 0
             then 100.0 * (m.sum_mm - m.nadir_before_mm) / m.nadir_before_mm end as pct_from_nadir,
        i.has_new_lesion
    from measured m
    join stg_imaging i using (patient_id, visit)
    where not m.is_baseline and m.baseline_mm > 0
),

-- the non-target lesions at the scan, as correlated EXISTS: a query that keeps the discrepant rows only
-- (`where is_discrepant`) pushes the recorded/implied part of the test below them, so they are
-- evaluated for the candidate scans only
checked as (
    select
        j.*,
        exists (select 1 from stg_lesion_measurements m join stg_lesions l using (patient_id, lesion_id)
                where m.patient_id = j.patient_id and m.visit = j.visit and not l.is_target
                  and m.non_target_status = 'unequivocal_progression') as has_non_target_progression,
        exists (select 1 from stg_lesion_measurements m join stg_lesions l using (patient_id, lesion_id)
                where m.patient_id = j.patient_id and m.visit = j.visit and not l.is_target
                  and m.non_target_status <> 'absent') as has_non_target_present
    from judged j
),

final as (
    select
        j.scope, j.patient_id, c.site_id, c.bclc_stage, j.visit, j.imaging_date,
        j.recorded, j.implied, j.sum_mm, j.baseline_mm, j.nadir_before_mm, j.pct_change, j.pct_from_nadir,
        j.has_new_lesion, j.has_non_target_progression, j.has_non_target_present,
        -- never null (no coalesce, so that a filter on it splits into conjuncts the optimizer can push down)
        j.recorded is not null and j.recorded <> 'NE' and j.implied <> j.recorded
            -- a new-lesion flag the source did not record may explain a PD: not read as "no new lesion"
            and not (j.scope = 'overall' and j.recorded = 'PD'
                     and (j.has_new_lesion is distinct from false or j.has_non_target_progression))
            and not (j.scope = 'overall' and j.recorded = 'PR' and j.implied = 'CR'
                     and j.has_non_target_present) as is_discrepant
    from checked j
    join cohort_all c using (patient_id)
    -- stored in this order: a query for one scope's discrepant scans reads only their row groups
    order by j.scope, is_discrepant, j.patient_id
)

select * from final
