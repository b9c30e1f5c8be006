-- One row per patient per level item (each CTCAE term, each system organ class, and overall) with at least one
-- adverse-event episode, every patient of the snapshot: the worst grade and the number of episodes for each kind of
-- episodes the Safety page can count (all, treatment-related only, serious only, both).
-- Materialized once per snapshot: every patient, no filter, no scope (none of them changes these values). The
-- ae-incidence export counts the patients of the current filter and scope from it when no onset window is set;
-- with a window ("onset within N days") it takes the worst grades from ae_episodes instead.
-- A worst grade is the maximum grade of the patient's episodes of the kind within the item, null when the patient has
-- none of that kind there (the per-class and overall maxima are taken over the per-term rows).
with per_term as (
    select
        any_value(patient_id) as patient_id,
        patient_key,
        any_value(soc_key) as soc_key,
        term_key,
        max(grade) as worst_grade,
        max(grade) filter (where is_treatment_related) as worst_grade_related,
        max(grade) filter (where is_serious) as worst_grade_serious,
        max(grade) filter (where is_treatment_related and is_serious) as worst_grade_related_serious,
        count(*) as n_episodes,
        count_if(is_treatment_related) as n_related,
        count_if(is_serious) as n_serious,
        count_if(is_treatment_related and is_serious) as n_related_serious
    from ae_episodes_all
    group by patient_key, term_key
),

per_soc as (
    select
        any_value(patient_id) as patient_id,
        patient_key,
        soc_key,
        max(worst_grade) as worst_grade,
        max(worst_grade_related) as worst_grade_related,
        max(worst_grade_serious) as worst_grade_serious,
        max(worst_grade_related_serious) as worst_grade_related_serious,
        sum(n_episodes) as n_episodes,
        sum(n_related) as n_related,
        sum(n_serious) as n_serious,
        sum(n_related_serious) as n_related_serious
    from per_term
    group by patient_key, soc_key
),

per_patient as (
    select
        any_value(patient_id) as patient_id,
        patient_key,
        max(worst_grade) as worst_grade,
        max(worst_grade_related) as worst_grade_related,
        max(worst_grade_serious) as worst_grade_serious,
        max(worst_grade_related_serious) as worst_grade_related_serious,
        sum(n_episodes) as n_episodes,
        sum(n_related) as n_related,
        sum(n_serious) as n_serious,
        sum(n_related_serious) as n_related_serious
    from per_soc
    group by patient_key
),

levels as (
    select 'term' as level, patient_id, patient_key, soc_key, term_key,
           worst_grade, worst_grade_related, worst_grade_serious, worst_grade_related_serious,
           n_episodes, n_related, n_serious, n_related_serious
    from per_term
    union all
    select 'soc', patient_id, patient_key, soc_key, null,
           worst_grade, worst_grade_related, worst_grade_serious, worst_grade_related_serious,
           n_episodes, n_related, n_serious, n_related_serious
    from per_soc
    union all
    select 'overall', patient_id, patient_key, null, null,
           worst_grade, worst_grade_related, worst_grade_serious, worst_grade_related_serious,
           n_episodes, n_related, n_serious, n_related_serious
    from per_patient
),

final as (
    select
        level, patient_id, patient_key, soc_key, term_key,
        worst_grade::tinyint as worst_grade,
        worst_grade_related::tinyint as worst_grade_related,
        worst_grade_serious::tinyint as worst_grade_serious,
        worst_grade_related_serious::tinyint as worst_grade_related_serious,
        n_episodes::integer as n_episodes,
        n_related::integer as n_related,
        n_serious::integer as n_serious,
        n_related_serious::integer as n_related_serious
    from levels
)

select * from final
