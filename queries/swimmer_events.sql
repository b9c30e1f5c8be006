-- One row per response scope per patient per swimmer-plot mark: each DEB-TACE session, each post-baseline scan (with the
-- scope's recorded response), the scope's first progression (PD), and the end of the lane (death, or last contact).
-- A lane runs from the first DEB-TACE (day 0) to death_date, else last_known_alive_date; day = calendar days from day 0.
-- The rows of swimmer_events_all (computed once per snapshot) for the patients in `cohort`.
with final as (
    select e.*
    from swimmer_events_all e
    where e.patient_id in (select patient_id from cohort)
)

select * from final
