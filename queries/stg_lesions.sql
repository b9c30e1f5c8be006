-- One row per tracked lesion: the snapshot's lesions.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        patient_id,
        lesion_id,
        segment,
        is_target,
        is_treated
    from read_parquet(snapshot_file('lesions'))
)
select * from final
