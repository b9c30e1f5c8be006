-- One row per patient per response scope ('overall': all target lesions; 'local': treated target lesions) per imaging visit.
-- sum_mm is the sum of viable target diameters (null when a lesion of the scope is unmeasured at that visit);
-- pct_change is from the baseline sum; nadir_mm the smallest sum so far, baseline included (mRECIST).
-- Materialized once per snapshot: every enrolled patient, no filter (filters never change these values);
-- `tumour_burden` keeps the patients of the current filter and scope.
with scopes as (
    select 'overall' as scope union all select 'local'
),

lesions_in_scope as (
    select sc.scope, l.patient_id, l.lesion_id
    from stg_lesions l
    cross join scopes sc
    join stg_patients p using (patient_id)
    where p.first_treatment_date <= snapshot_cutoff()
      and l.is_target and (sc.scope = 'overall' or l.is_treated)
),

sums as (
    select
        ls.scope, i.patient_id, i.visit, i.imaging_date,
        case when ls.scope = 'overall' then i.overall_response else i.local_response end as response,
        count(ls.lesion_id) as n_lesions,
        case when count(m.viable_diameter_mm) = count(ls.lesion_id) then sum(m.viable_diameter_mm) end as sum_mm
    from lesions_in_scope ls
    join stg_imaging i using (patient_id)
    left join stg_lesion_measurements m
        on m.patient_id = ls.patient_id and m.lesion_id = ls.lesion_id and m.visit = i.visit
    group by ls.scope, i.patient_id, i.visit, i.imaging_date, response
),

with_baseline as (
    select
        s.*,
        max(sum_mm) filter (where visit = 'baseline') over (partition by scope, patient_id) as baseline_mm,
        min(sum_mm) over (partition by scope, patient_id order by imaging_date
                          rows between unbounded preceding and current row) as nadir_mm,
        min(imaging_date) filter (where response = 'PD' and visit <> 'baseline')
            over (partition by scope, patient_id) as first_pd_date
    from sums s
),

final as (
    select
        scope, patient_id, visit, imaging_date, response, n_lesions, sum_mm, baseline_mm, nadir_mm,
        case when baseline_mm > 0 and sum_mm is not null
             then 100.0 * (sum_mm - baseline_mm) / baseline_mm end as pct_change,
        visit = 'baseline' as is_baseline,
        first_pd_date is null or imaging_date <= first_pd_date as is_up_to_first_pd
    from with_baseline
)

select * from final
