-- One row per lesion per imaging time point: the snapshot's lesion_measurements.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        patient_id,
        lesion_id,
        visit,
        viable_diameter_mm,
        non_target_status
    from read_parquet(snapshot_file('lesion_measurements'))
)
select * from final
