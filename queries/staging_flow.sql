-- One row per patient of cohort per staging measure ('bclc', 'milan', 'resectable'): the baseline state (source)
-- and the best follow-up state (target), or a terminal state when the patient has no restaging review.
-- Best follow-up (analysis plan, "Staging and downstaging"): BCLC = the lowest stage at any review; Milan = 'within
-- Milan' when within Milan at any review; resectability = 'resectable' when resectable at any review. A patient
-- without a review goes to 'died before restaging' (death recorded) or 'not yet restaged'. A baseline the source did
-- not record is its own state: 'BCLC unknown', 'Milan unknown', 'resectability unknown'.
with states as (
    select patient_id, 'bclc' as measure,
           'BCLC ' || coalesce(baseline_bclc_stage, 'unknown') as baseline_state,
           'BCLC ' || best_bclc_stage as best_state,
           restaging_status
    from staging_outcomes
    union all
    select patient_id, 'milan',
           case when baseline_within_milan then 'within Milan' when not baseline_within_milan then 'outside Milan'
                else 'Milan unknown' end,
           case when any_within_milan then 'within Milan' else 'outside Milan' end,
           restaging_status
    from staging_outcomes
    union all
    select patient_id, 'resectable',
           case when baseline_resectable then 'resectable' when not baseline_resectable then 'not resectable'
                else 'resectability unknown' end,
           case when any_resectable then 'resectable' else 'not resectable' end,
           restaging_status
    from staging_outcomes
),

final as (
    select
        patient_id,
        measure,
        baseline_state as source,
        case when restaging_status = 'restaged' then best_state else restaging_status end as target
    from states
)

select * from final
