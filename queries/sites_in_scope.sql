-- One row per site the current user may see and the site filter keeps (all sites when neither is set).
-- scope_sites is the user's site access (bound by the data seam), f_site the user's site filter.
with final as (
    select s.*
    from stg_sites s
    where (getvariable('scope_sites') is null or list_contains(getvariable('scope_sites'), s.site_id))
      and (getvariable('f_site') is null or list_contains(getvariable('f_site'), s.site_id))
)
select * from final
