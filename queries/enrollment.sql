-- One row per site in scope and filter: patients enrolled (in the current filter) against the site's target.
with per_site as (
    select site_id, count(*) as n_enrolled,
           min(first_treatment_date) as first_enrollment_date,
           max(first_treatment_date) as last_enrollment_date
    from cohort
    group by site_id
),

final as (
    select
        s.site_id, s.site_name,
        coalesce(p.n_enrolled, 0) as n_enrolled,
        s.target_enrollment,
        p.first_enrollment_date,
        p.last_enrollment_date,
        s.activation_date
    from sites_in_scope s
    left join per_site p using (site_id)
)

select * from final
