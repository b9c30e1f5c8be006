-- One row per enrolled patient (no filter): baseline and best follow-up staging (BCLC, Milan, resectability) and downstaging outcomes.
-- Best follow-up BCLC = the lowest stage at any review (0 < A < B < C < D). Downstaged to Milan: outside Milan at
-- baseline and within Milan at any review. Converted: not resectable at baseline and resectable at any review.
-- Both are null for a patient whose baseline Milan status (resectability) was not recorded.
-- Materialized once per snapshot: filters never change these values; `staging_outcomes` keeps the patients of the
-- current filter and scope.
with reviews as (
    select
        s.patient_id,
        count(*) as n_reviews,
        min(s.bclc_stage) as best_bclc_stage,          -- '0' < 'A' < 'B' < 'C' < 'D' in byte order
        bool_or(s.is_within_milan) as any_within_milan,
        bool_or(s.is_resectable) as any_resectable,
        min(s.review_date) filter (where s.is_within_milan) as first_within_milan_date,
        max(s.review_date) as last_review_date
    from stg_staging s
    group by s.patient_id
),

final as (
    select
        c.patient_id, c.site_id, c.first_treatment_date, c.death_date,
        c.bclc_stage as baseline_bclc_stage,
        c.is_within_milan as baseline_within_milan,
        c.is_resectable as baseline_resectable,
        coalesce(r.n_reviews, 0) as n_reviews,
        r.best_bclc_stage,
        r.any_within_milan,
        r.any_resectable,
        r.first_within_milan_date,
        r.last_review_date,
        case when r.n_reviews is not null then 'restaged'
             when c.death_date is not null then 'died before restaging'
             else 'not yet restaged' end as restaging_status,
        -- null when the baseline was not recorded: such a patient is neither downstaged nor not downstaged
        case when c.is_within_milan is not null
             then not c.is_within_milan and coalesce(r.any_within_milan, false) end as is_downstaged_to_milan,
        case when c.is_resectable is not null
             then not c.is_resectable and coalesce(r.any_resectable, false) end as is_converted_to_resectable
    from cohort_all c
    left join reviews r using (patient_id)
)

select * from final
