-- One row per enrolled patient per time-to-event endpoint (os, ttp, pfs, local_ttp): time in days from the first DEB-TACE and an event flag.
-- Definitions: docs/analysis.md. OS censors at last_known_alive_date. TTP and local TTP censor at the
-- last post-baseline scan (deaths without progression too; day 0 with no post-baseline scan). PFS: first of
-- progression or death, else censored at the last post-baseline scan. Local TTP censors at the last post-baseline scan
-- with a local response recorded (day 0 with none): a scan whose treated lesions were not assessed tells nothing.
-- Materialized once per snapshot: every enrolled patient, no filter (filters never change these values);
-- `patient_endpoints` keeps the patients of the current filter and scope.
with scans as (
    select
        i.patient_id,
        max(i.imaging_date) as last_scan_date,
        min(i.imaging_date) filter (where i.overall_response = 'PD') as first_pd_date,
        min(i.imaging_date) filter (where i.local_response = 'PD') as first_local_pd_date,
        max(i.imaging_date) filter (where i.local_response is not null) as last_local_scan_date
    from stg_imaging i
    where i.visit <> 'baseline'
    group by i.patient_id
),

base as (
    select
        p.patient_id,
        p.first_treatment_date as t0,
        p.death_date,
        p.last_known_alive_date,
        s.first_pd_date,
        s.first_local_pd_date,
        coalesce(s.last_scan_date, p.first_treatment_date) as last_scan_date,
        coalesce(s.last_local_scan_date, p.first_treatment_date) as last_local_scan_date
    from stg_patients p
    left join scans s using (patient_id)
),

long as (
    select patient_id, 'os' as endpoint,
           coalesce(death_date, last_known_alive_date) as end_date,
           death_date is not null as is_event
    from base
    union all
    select patient_id, 'ttp', coalesce(first_pd_date, last_scan_date), first_pd_date is not null
    from base
    union all
    select patient_id, 'pfs',
           case when first_pd_date is null and death_date is null then last_scan_date
                else least(coalesce(first_pd_date, death_date), coalesce(death_date, first_pd_date)) end,
           first_pd_date is not null or death_date is not null
    from base
    union all
    select patient_id, 'local_ttp', coalesce(first_local_pd_date, last_local_scan_date), first_local_pd_date is not null
    from base
),

final as (
    select l.patient_id, l.endpoint, b.t0 as start_date, l.end_date,
           (l.end_date - b.t0)::integer as time_days,
           l.is_event
    from long l
    join base b using (patient_id)
)

select * from final
