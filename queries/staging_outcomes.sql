-- One row per patient: baseline and best follow-up staging (BCLC, Milan, resectability) and downstaging outcomes.
-- Best follow-up BCLC = the lowest stage at any review (0 < A < B < C < D). Downstaged to Milan: outside Milan at
-- baseline and within Milan at any review. Converted: not resectable at baseline and resectable at any review.
-- The rows of staging_outcomes_all (computed once per snapshot) for the patients in `cohort`.
with final as (
    select s.*
    from staging_outcomes_all s
    where s.patient_id in (select patient_id from cohort)
)

select * from final
