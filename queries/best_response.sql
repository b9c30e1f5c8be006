-- One row per patient per response scope ('overall', 'local'): best overall response (BOR) and best percent change.
-- The rows of `best_response_all` (materialized once per snapshot) for the patients in the current filter and scope.
with final as (
    select b.*
    from best_response_all b
    where b.patient_id in (select patient_id from cohort)
)

select * from final
