-- One row per site in scope and filter per calendar month, from the first site activation to the cut-off month:
-- patients enrolled that month and cumulatively (current filter), with the site's target (null: none recorded).
-- A site whose activation date was not recorded counts from its first enrolment (any patient, not only the filter's).
with first_enrolment as (
    select site_id, min(first_treatment_date) as first_date
    from cohort_all
    group by site_id
),

site_start as (
    select s.site_id, coalesce(s.activation_date, f.first_date) as start_date
    from sites_in_scope s
    left join first_enrolment f using (site_id)
),

months as (
    select unnest(generate_series(
        (select date_trunc('month', min(start_date)) from site_start),
        date_trunc('month', snapshot_cutoff()),
        interval 1 month))::date as month
),

counts as (
    select site_id, enrollment_month as month, count(*) as n_enrolled
    from cohort
    group by all
),

final as (
    select
        s.site_id, s.site_name, m.month,
        cast(coalesce(c.n_enrolled, 0) as integer) as n_enrolled,
        cast(sum(coalesce(c.n_enrolled, 0)) over (partition by s.site_id order by m.month) as integer) as cum_enrolled,
        s.target_enrollment
    from sites_in_scope s
    cross join months m
    left join counts c on c.site_id = s.site_id and c.month = m.month
)

select * from final
