-- One row per response scope per patient per post-baseline visit with a complete sum of target diameters and a baseline
-- sum > 0: the recorded response next to the target-lesion response implied by the measurements (mRECIST).
-- Implied (as dashboard/validate.py IMPLIED_RESPONSE_SQL): CR = sum 0; PD = sum >= 120% of, and above, the nadir of
-- the earlier measured visits (baseline included); PR = sum <= 70% of baseline; else SD. Overall scope: a recorded PD
-- explained by a new lesion or non-target progression, or a recorded PR with implied CR while a non-target lesion
-- persists, is not a discrepancy. Local scope (treated target lesions) ignores new and non-target lesions.
-- The rows of `response_consistency_all` (materialized once per snapshot) for the patients in the current filter and scope.
with final as (
    select r.*
    from response_consistency_all r
    where r.patient_id in (select patient_id from cohort)
)

select * from final
