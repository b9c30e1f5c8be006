-- One row per response scope per patient per imaging visit with a percent change, for patients with a waterfall bar
-- (best_pct_change not null): the points of the spider plot. day = calendar days from the first DEB-TACE (time zero);
-- visits after the first PD are kept (is_up_to_first_pd false) so each line runs to the last measured scan.
-- The rows of spider_points_all (computed once per snapshot) for the patients in `cohort`.
with final as (
    select p.*
    from spider_points_all p
    where p.patient_id in (select patient_id from cohort)
)

select * from final
