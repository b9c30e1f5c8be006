-- One row per patient of cohort outside Milan at baseline: time to downstaging to within Milan (analysis plan,
-- "Staging and downstaging"). From the first DEB-TACE (time zero) to the first review within Milan: status 1 (the
-- event); death before that: status 2 (the competing event); otherwise status 0, censored at the last review, or at
-- day 0 with no review. A review within Milan on the day of death counts as the event (it was recorded alive).
-- A patient whose baseline Milan status was not recorded is not here (`not null` is not true): not known to be outside.
with base as (
    select
        patient_id,
        first_treatment_date,
        death_date,
        first_within_milan_date,
        last_review_date,
        first_within_milan_date is not null
            and (death_date is null or first_within_milan_date <= death_date) as reached_milan
    from staging_outcomes
    where not baseline_within_milan
),

outcomes as (
    select
        *,
        case when reached_milan then 1 when death_date is not null then 2 else 0 end as status,
        case when reached_milan then first_within_milan_date
             when death_date is not null then death_date
             else coalesce(last_review_date, first_treatment_date) end as end_date
    from base
),

final as (
    select
        patient_id,
        first_treatment_date as start_date,
        end_date,
        (end_date - first_treatment_date)::integer as time_days,
        status,
        case status when 1 then 'within Milan' when 2 then 'died' else 'censored' end as outcome
    from outcomes
)

select * from final
