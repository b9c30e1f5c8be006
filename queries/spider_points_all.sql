-- One row per response scope per patient per imaging visit with a percent change, for patients with a waterfall bar
-- (best_pct_change not null): the points of the spider plot. day = calendar days from the first DEB-TACE (time zero);
-- visits after the first PD are kept (is_up_to_first_pd false) so each line runs to the last measured scan.
-- Materialized once per snapshot: every enrolled patient, no filter (filters never change these values);
-- `spider_points` keeps the patients of the current filter and scope.
with final as (
    select
        t.scope, t.patient_id, b.site_id, b.bclc_stage, b.bor,
        t.visit, t.imaging_date,
        (t.imaging_date - c.first_treatment_date)::integer as day,
        t.sum_mm, t.pct_change, t.response, t.is_baseline, t.is_up_to_first_pd
    from tumour_burden_all t
    join best_response_all b using (scope, patient_id)
    join cohort_all c using (patient_id)
    where b.best_pct_change is not null and t.pct_change is not null
)

select * from final
