-- One row per patient in the filter: baseline fields and derived endpoints (days and event flag for OS, TTP, PFS, local TTP),
-- best overall response and downstaging flags. This is the `patients` export.
with endpoints as (
    pivot (select patient_id, endpoint, time_days, is_event from patient_endpoints)
    on endpoint in ('os', 'ttp', 'pfs', 'local_ttp')
    using first(time_days) as days, first(is_event) as event
),

final as (
    select
        c.patient_id, c.site_id, c.site_name, c.first_treatment_date, c.age_years, c.sex, c.etiology,
        c.ecog_ps, c.child_pugh_score, c.child_pugh_class, c.albi_grade, c.afp_ng_ml, c.tumor_count,
        c.largest_tumor_cm, c.has_macrovascular_invasion, c.has_extrahepatic_spread, c.bclc_stage,
        c.is_within_milan, c.is_within_up_to_seven, c.is_resectable, c.last_known_alive_date,
        c.death_date, c.off_study_date, c.off_study_reason, c.drug,
        e.os_days, e.os_event, e.ttp_days, e.ttp_event, e.pfs_days, e.pfs_event,
        e.local_ttp_days, e.local_ttp_event,
        b.bor,
        s.is_downstaged_to_milan, s.is_converted_to_resectable
    from cohort c
    left join endpoints e using (patient_id)
    left join best_response b on b.patient_id = c.patient_id and b.scope = 'overall'
    left join staging_outcomes s using (patient_id)
)

select * from final
