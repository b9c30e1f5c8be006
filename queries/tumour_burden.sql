-- One row per patient per response scope ('overall': all target lesions; 'local': treated target lesions) per imaging visit.
-- The rows of `tumour_burden_all` (materialized once per snapshot) for the patients in the current filter and scope.
with final as (
    select t.*
    from tumour_burden_all t
    where t.patient_id in (select patient_id from cohort)
)

select * from final
