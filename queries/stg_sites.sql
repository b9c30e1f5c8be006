-- One row per participating hospital: the snapshot's sites.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        site_id,
        site_name,
        activation_date,
        target_enrollment
    from read_parquet(snapshot_file('sites'))
)
select * from final
