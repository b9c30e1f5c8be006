-- One row per follow-up restaging review: the snapshot's staging.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        patient_id,
        visit,
        review_date,
        bclc_stage,
        is_within_milan,
        is_within_up_to_seven,
        is_resectable
    from read_parquet(snapshot_file('staging'))
)
select * from final
