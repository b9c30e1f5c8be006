-- One row per patient per response scope ('overall', 'local'): best overall response (BOR) and best percent change.
-- BOR: best recorded response at post-baseline visits up to and including the first PD, CR > PR > SD > PD > NE;
-- NE with no post-baseline scan. A follow-up without a local response (not assessed apart) is NE in the local scope,
-- as mRECIST scores an assessment not done; n_scans_not_assessed counts them. best_pct_change: minimum percent change over the same visits (waterfall bar);
-- null (not evaluable) with no baseline sum or no post-baseline sum. No confirmation of response is required.
-- sample_rank: the patient's place in a fixed pseudo-random order (by the SHA-256 hex of the id), the order in
-- which the spider plot samples patients; computed here once, not hashed at every query.
-- Materialized once per snapshot: every enrolled patient, no filter; `best_response` keeps the current filter and scope.
with enrolled as (
    select patient_id, site_id, bclc_stage,
        cast(row_number() over (order by sha256(patient_id)) as integer) as sample_rank
    from stg_patients
    where first_treatment_date <= snapshot_cutoff()
),

scopes as (
    select 'overall' as scope union all select 'local'
),

visits as (
    select
        sc.scope, c.patient_id, i.visit, i.imaging_date,
        -- a follow-up whose treated lesions were not assessed apart (local_response not recorded) is NE locally
        case when sc.scope = 'overall' then i.overall_response else coalesce(i.local_response, 'NE') end as response,
        sc.scope = 'local' and i.local_response is null as is_not_assessed
    from enrolled c
    cross join scopes sc
    join stg_imaging i using (patient_id)
    where i.visit <> 'baseline'
),

first_pd as (
    select scope, patient_id, min(imaging_date) as first_pd_date
    from visits where response = 'PD' group by all
),

counted as (
    select v.*
    from visits v
    left join first_pd f using (scope, patient_id)
    where f.first_pd_date is null or v.imaging_date <= f.first_pd_date
),

bor as (
    select scope, patient_id,
           arg_min(response, case response when 'CR' then 1 when 'PR' then 2 when 'SD' then 3
                                           when 'PD' then 4 else 5 end) as bor,
           count(*) as n_scans,
           count(*) filter (where is_not_assessed) as n_scans_not_assessed
    from counted group by all
),

burden as (
    select scope, patient_id,
           max(baseline_mm) as baseline_mm,
           min(pct_change) filter (where not is_baseline and is_up_to_first_pd) as best_pct_change,
           arg_min(visit, (pct_change, imaging_date)) filter (where not is_baseline and is_up_to_first_pd
                                                             and pct_change is not null) as best_visit
    from tumour_burden_all group by all
),

final as (
    select
        sc.scope, c.patient_id, c.site_id, c.bclc_stage,
        coalesce(b.bor, 'NE') as bor,
        coalesce(b.n_scans, 0) as n_followup_scans,
        coalesce(b.n_scans_not_assessed, 0) as n_scans_not_assessed,
        u.baseline_mm,
        u.best_pct_change,
        u.best_visit,
        f.first_pd_date,
        case when u.best_pct_change is not null then null
             when coalesce(u.baseline_mm, 0) = 0 then 'no baseline sum'
             when b.n_scans is null then 'no follow-up scan'
             else 'no post-baseline sum' end as not_evaluable_reason,
        c.sample_rank
    from enrolled c
    cross join scopes sc
    left join bor b on b.scope = sc.scope and b.patient_id = c.patient_id
    left join burden u on u.scope = sc.scope and u.patient_id = c.patient_id
    left join first_pd f on f.scope = sc.scope and f.patient_id = c.patient_id
)

select * from final
