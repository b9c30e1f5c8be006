-- One row per patient per time-to-event endpoint (os, ttp, pfs, local_ttp): time in days from the first DEB-TACE and an event flag.
-- Definitions: docs/analysis.md. OS censors at last_known_alive_date. TTP and local TTP censor at the
-- last post-baseline scan (deaths without progression too; day 0 with no post-baseline scan). PFS: first of
-- progression or death, else censored at the last post-baseline scan.
-- The rows of patient_endpoints_all (computed once per snapshot) for the patients in `cohort`.
with final as (
    select e.*
    from patient_endpoints_all e
    where e.patient_id in (select patient_id from cohort)
)

select * from final
