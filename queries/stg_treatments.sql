-- One row per DEB-TACE session: the snapshot's treatments.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        patient_id,
        session_number,
        treatment_date,
        drug,
        dose_mg,
        microsphere_size,
        is_superselective
    from read_parquet(snapshot_file('treatments'))
)
select * from final
