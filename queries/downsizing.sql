-- One row per patient of cohort: downsizing of the index lesion (the largest viable target lesion at baseline), its
-- best percent change up to and including the first PD (definitions: queries/downsizing_all.sql).
-- The rows of `downsizing_all` (materialized once per snapshot) for the patients in the current filter and scope.
with final as (
    select d.*
    from downsizing_all d
    where d.patient_id in (select patient_id from cohort)
)

select * from final
