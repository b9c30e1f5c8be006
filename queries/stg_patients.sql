-- One row per enrolled patient; baseline values as of the first treatment: the snapshot's patients.parquet, as the contract names and types it.
-- Staging views are the only views that read parquet; snapshot_file() is defined per snapshot schema.
-- Materialized once per snapshot: the file is read once into a DuckDB table, not at every query (a snapshot never changes).
with final as (
    select
        patient_id,
        site_id,
        first_treatment_date,
        age_years,
        sex,
        etiology,
        ecog_ps,
        child_pugh_score,
        child_pugh_class,
        albi_grade,
        afp_ng_ml,
        tumor_count,
        largest_tumor_cm,
        has_macrovascular_invasion,
        has_extrahepatic_spread,
        bclc_stage,
        is_within_milan,
        is_within_up_to_seven,
        is_resectable,
        last_known_alive_date,
        death_date,
        off_study_date,
        off_study_reason
    from read_parquet(snapshot_file('patients'))
)
select * from final
