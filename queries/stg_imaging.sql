-- One row per imaging time point (mRECIST assessment): the snapshot's imaging.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        patient_id,
        visit,
        imaging_date,
        modality,
        overall_response,
        local_response,
        has_new_lesion
    from read_parquet(snapshot_file('imaging'))
)
select * from final
