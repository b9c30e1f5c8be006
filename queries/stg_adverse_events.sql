-- One row per adverse-event episode (CTCAE v4.0): the snapshot's adverse_events.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        patient_id,
        ae_id,
        term,
        soc,
        grade,
        onset_date,
        resolution_date,
        is_serious,
        is_treatment_related,
        session_number
    from read_parquet(snapshot_file('adverse_events'))
)
select * from final
