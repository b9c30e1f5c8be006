"""Data-quality rules: one finding per row a data manager has to chase (docs/quality.md).

Each rule is one SQL query over the contract's tables by their bare names (`patients`, `imaging`,
...) returning one row per finding: `patient_id`, `detail` (the visit / lesion / AE and the
values) and `key` (the validator's example key). The validator (dashboard/validate.py) runs the
rules marked `validator=True` over the raw parquet files as its warnings, counting their rows;
the data-quality page runs every rule over the snapshot's staging views through the data seam
(`findings_sql`), so each rule has one definition and both count the same rows.

This module imports nothing of the data layer: the validator imports it.
"""
from __future__ import annotations

from dataclasses import dataclass

# a contract table -> the snapshot schema's staging view of it (queries/stg_<table>.sql)
TABLE_VIEWS = {t: f"stg_{t}" for t in ("sites", "patients", "treatments", "lesions", "imaging",
                                       "lesion_measurements", "staging", "adverse_events")}

NO_CONTACT_DAYS = 120       # analysis plan: no contact for more than 120 days before the cut-off
SIX_MONTHS = 182            # days, as the validator's "followed over six months" and S(182)
RESTAGING_WINDOW = 30       # a review from day 152 on counts as the 6-month restaging


@dataclass(frozen=True)
class Rule:
    table: str              # the table a data manager corrects
    column: str             # the column the validator names
    rule: str               # the rule as printed (validator, export, page)
    sql: str                # one row per finding: patient_id, detail, key
    reads: tuple[str, ...]  # the tables the query reads (the validator skips a rule over an unusable table)
    validator: bool         # also a warning of `python -m dashboard validate`
    params: tuple = ()
    name: str = ""          # the rule in the export and on the page, where `rule` alone is ambiguous

    @property
    def label(self) -> str:
        return self.name or self.rule


def _date(expr: str) -> str:
    return f"coalesce(cast({expr} as varchar), 'none')"


def _text(expr: str) -> str:
    return f"coalesce('''' || {expr} || '''', 'none')"


# The target-lesion response implied by the measurements at each follow-up visit (mRECIST):
# CR = every target sum 0; PR = sum <= -30% from baseline; PD = sum >= +20% from the nadir
# (smallest sum so far, baseline included); else SD. The recorded overall response may also be
# driven by non-target progression or a new lesion, so only contradictions the measurements
# alone can show are flagged.
IMPLIED_RESPONSE_SQL = """
with target_sums as (
    select m.patient_id, m.visit, i.imaging_date,
           sum(m.viable_diameter_mm) as total, count(*) filter (where m.viable_diameter_mm is null) as n_missing,
           count(*) as n_rows
    from lesion_measurements m
    join lesions l using (patient_id, lesion_id)
    join imaging i using (patient_id, visit)
    where l.is_target
    group by all
), n_targets as (
    select patient_id, count(*) as n_targets from lesions where is_target group by all
), measured as (
    select *, min(total) over (partition by patient_id order by imaging_date
                               rows between unbounded preceding and 1 preceding) as nadir_before
    from target_sums join n_targets using (patient_id) where n_missing = 0 and n_rows = n_targets
), with_base as (
    select m.*, b.total as base
    from measured m join measured b on b.patient_id = m.patient_id and b.visit = 'baseline'
    where m.visit <> 'baseline' and b.total > 0
), non_target as (      -- per scan: a non-target lesion progressing unequivocally; one still present
    select m.patient_id, m.visit,
           bool_or(m.non_target_status = 'unequivocal_progression') as any_progression,
           bool_or(m.non_target_status <> 'absent') as any_present
    from lesion_measurements m join lesions l using (patient_id, lesion_id)
    where not l.is_target
    group by all
)
select w.patient_id, w.visit, i.overall_response as recorded,
       case when w.total = 0 then 'CR'
            when w.total >= 1.2 * w.nadir_before and w.total > w.nadir_before then 'PD'
            when w.total <= 0.7 * w.base then 'PR'
            else 'SD' end as implied,
       w.total, w.base, w.nadir_before,
       i.has_new_lesion or coalesce(nt.any_progression, false) as nt_progression_or_new,
       coalesce(nt.any_present, false) as nt_present
from with_base w join imaging i using (patient_id, visit) left join non_target nt using (patient_id, visit)
"""


def _baseline_response(col: str) -> Rule:
    return Rule("imaging", col, "a response recorded at baseline",
                f"select patient_id, 'visit baseline: {col} ''' || {col} || ''' (should be empty)' as detail, "
                f"patient_id as key from imaging where visit = 'baseline' and {col} is not null",
                ("imaging",), True, name=f"a response recorded at baseline ({col})")


def _after_last_contact(table: str, what: str, date_col: str, label: str, extra: str = "") -> Rule:
    """A record dated after last_known_alive_date: the patient was seen then, so the last contact is stale."""
    return Rule(table, date_col, f"{what} after the last contact (last_known_alive_date)",
                f"select p.patient_id, {label} || ' on ' || cast(t.{date_col} as varchar) || ', last contact ' "
                f"|| cast(p.last_known_alive_date as varchar) as detail, p.patient_id as key "
                f"from {table} t join patients p using (patient_id) "
                f"where t.{date_col} > p.last_known_alive_date{extra}",
                (table, "patients"), False)


RULES: tuple[Rule, ...] = (
    # --- the contract's warnings (validator) ----------------------------------------------------
    Rule("patients", "off_study_reason", "off_study_date and off_study_reason should be given together",
         "select patient_id, 'off_study_date ' || " + _date("off_study_date") + " || ', off_study_reason ' || "
         + _text("off_study_reason") + " as detail, patient_id as key "
         "from patients where (off_study_date is null) <> (off_study_reason is null)",
         ("patients",), True),
    Rule("patients", "off_study_reason", "a patient with a death_date should be off study for 'death'",
         "select patient_id, 'death_date ' || cast(death_date as varchar) || ', off_study_reason ' || "
         + _text("off_study_reason") + " as detail, patient_id as key from patients "
         "where death_date is not null and coalesce(off_study_reason, '') <> 'death'",
         ("patients",), True),
    Rule("patients", "first_treatment_date", "before the site's activation_date",
         "select p.patient_id, 'first treatment ' || cast(p.first_treatment_date as varchar) || ', site ' || "
         "p.site_id || ' activated ' || cast(s.activation_date as varchar) as detail, p.patient_id as key "
         "from patients p join sites s using (site_id) where p.first_treatment_date < s.activation_date",
         ("sites", "patients"), True),
    Rule("patients", "patient_id", "has no session 1 in treatments",
         "select p.patient_id, coalesce('sessions recorded: ' || (select string_agg(cast(t.session_number as varchar), "
         "', ' order by t.session_number) from treatments t where t.patient_id = p.patient_id), "
         "'no session recorded') as detail, p.patient_id as key "
         "from patients p where not exists (select 1 from treatments t "
         "where t.patient_id = p.patient_id and t.session_number = 1)",
         ("treatments", "patients"), True),
    _baseline_response("overall_response"),
    _baseline_response("local_response"),
    Rule("imaging", "visit", "patient followed over six months with no post-baseline imaging",
         "select p.patient_id, 'followed ' || cast(coalesce(p.death_date, p.last_known_alive_date) - "
         "p.first_treatment_date as varchar) || ' days (to ' || case when p.death_date is null then 'last contact ' "
         "else 'death ' end || cast(coalesce(p.death_date, p.last_known_alive_date) as varchar) || "
         "'), no imaging after baseline' as detail, p.patient_id as key "
         "from patients p where coalesce(p.death_date, p.last_known_alive_date) "
         "- p.first_treatment_date > 182 and not exists (select 1 from imaging i where "
         "i.patient_id = p.patient_id and i.visit <> 'baseline')",
         ("imaging", "patients"), True),
    Rule("lesion_measurements", "viable_diameter_mm", "target lesion not measured at a scan",
         "select m.patient_id, 'visit ' || m.visit || ': target lesion ' || m.lesion_id || "
         "' has no viable_diameter_mm' as detail, m.patient_id || '/' || m.lesion_id || '/' || m.visit as key "
         "from lesion_measurements m join lesions l using (patient_id, lesion_id) "
         "where l.is_target and m.viable_diameter_mm is null",
         ("lesion_measurements", "lesions"), True),
    # a target lesion without its row leaves the scan's sum of diameters not evaluable
    # (analysis plan, mRECIST); a follow-up scan with no row at all is the next rule's
    Rule("lesion_measurements", "viable_diameter_mm", "target lesion has no measurement row at a scan",
         "select l.patient_id, 'visit ' || i.visit || ': target lesion ' || l.lesion_id || "
         "' has no measurement row' as detail, l.patient_id || '/' || l.lesion_id || '/' || i.visit as key "
         "from imaging i join lesions l using (patient_id) left join lesion_measurements m on m.patient_id = "
         "l.patient_id and m.lesion_id = l.lesion_id and m.visit = i.visit "
         "where l.is_target and m.patient_id is null and (i.visit = 'baseline' or exists "
         "(select 1 from lesion_measurements n where n.patient_id = i.patient_id and n.visit = i.visit))",
         ("imaging", "lesion_measurements", "lesions"), True),
    Rule("imaging", "visit", "follow-up scan with no lesion measurements",
         "select i.patient_id, 'visit ' || i.visit || ' (' || cast(i.imaging_date as varchar) || "
         "'): no lesion measured' as detail, i.patient_id || '/' || i.visit as key "
         "from imaging i where i.visit <> 'baseline' and not exists "
         "(select 1 from lesion_measurements m where m.patient_id = i.patient_id and m.visit = i.visit)",
         ("imaging", "lesion_measurements"), True),
    Rule("imaging", "overall_response",
         "recorded response contradicts the target-lesion response implied by the measurements",
         "select patient_id, 'visit ' || visit || ': recorded ' || recorded || ', measurements imply ' || implied || "
         "' (target sum ' || cast(round(total, 1) as varchar) || ' mm, baseline ' || cast(round(base, 1) as varchar) || "
         "' mm, nadir before ' || cast(round(nadir_before, 1) as varchar) || ' mm)' as detail, "
         "patient_id || '/' || visit || ' recorded ' || recorded || ', measurements imply ' || implied as key "
         "from (" + IMPLIED_RESPONSE_SQL + ") where recorded <> 'NE' and implied <> recorded "
         "and not (recorded = 'PD' and nt_progression_or_new) "
         "and not (recorded = 'PR' and implied = 'CR' and nt_present)",
         ("imaging", "lesion_measurements", "lesions"), True),
    Rule("adverse_events", "term", "term not in the registry's CTCAE v4.0 list (check spelling)",
         "select distinct patient_id, 'AE ' || ae_id || ': term ''' || term || ''' (grade ' || cast(grade as varchar) "
         "|| ', onset ' || cast(onset_date as varchar) || ')' as detail, "
         "patient_id || '/' || ae_id || '=' || term as key from adverse_events where not list_contains(?, term)",
         ("adverse_events",), True, params=("CTCAE_TERMS",)),

    # --- the analysis plan's and the data manager's (this page only) -----------------------------
    # on study: not known to have died (death_date null) and not off study (off_study_date and
    # off_study_reason both null)
    Rule("patients", "last_known_alive_date",
         f"no contact for more than {NO_CONTACT_DAYS} days before the cut-off while alive and on study",
         "select patient_id, 'last contact ' || cast(last_known_alive_date as varchar) || ', ' || "
         "cast(snapshot_cutoff() - last_known_alive_date as varchar) || ' days before the cut-off ' || "
         "cast(snapshot_cutoff() as varchar) as detail, patient_id as key from patients "
         "where death_date is null and off_study_date is null and off_study_reason is null "
         f"and snapshot_cutoff() - last_known_alive_date > {NO_CONTACT_DAYS}",
         ("patients",), False),
    # seen alive after day 182 and on study at day 182, with no review from day 152 on
    Rule("staging", "review_date", "restaging missing at 6 months",
         "select p.patient_id, 'seen alive on day ' || cast(p.last_known_alive_date - p.first_treatment_date as varchar) "
         "|| ' (' || cast(p.last_known_alive_date as varchar) || '), ' || coalesce('last review on day ' || "
         "cast((select max(s.review_date) from staging s where s.patient_id = p.patient_id) - p.first_treatment_date "
         "as varchar), 'no review') || ', none from day "
         f"{SIX_MONTHS - RESTAGING_WINDOW} on' as detail, p.patient_id as key from patients p "
         f"where p.last_known_alive_date - p.first_treatment_date > {SIX_MONTHS} "
         f"and (p.off_study_date is null or p.off_study_date - p.first_treatment_date > {SIX_MONTHS}) "
         "and not exists (select 1 from staging s where s.patient_id = p.patient_id "
         f"and s.review_date - p.first_treatment_date >= {SIX_MONTHS - RESTAGING_WINDOW})",
         ("staging", "patients"), False),
    Rule("adverse_events", "resolution_date", "AE resolved after the patient's death",
         "select a.patient_id, 'AE ' || a.ae_id || ' (' || a.term || ', grade ' || cast(a.grade as varchar) || "
         "'): resolved ' || cast(a.resolution_date as varchar) || ', death ' || cast(p.death_date as varchar) as detail, "
         "a.patient_id || '/' || a.ae_id as key from adverse_events a join patients p using (patient_id) "
         "where a.resolution_date > p.death_date",
         ("adverse_events", "patients"), False),
    Rule("patients", "death_date", "off study for 'death' with no death_date",
         "select patient_id, 'off study ' || " + _date("off_study_date") + " || ' for ''death'', death_date empty' "
         "as detail, patient_id as key from patients where off_study_reason = 'death' and death_date is null",
         ("patients",), False),
    Rule("imaging", "visit", "no baseline imaging",
         "select p.patient_id, coalesce('follow-up scans: ' || (select string_agg(i.visit, ', ' order by i.imaging_date) "
         "from imaging i where i.patient_id = p.patient_id), 'no scan at all') || ', none at baseline' as detail, "
         "p.patient_id as key from patients p where not exists "
         "(select 1 from imaging i where i.patient_id = p.patient_id and i.visit = 'baseline')",
         ("imaging", "patients"), False),
    _after_last_contact("imaging", "imaging", "imaging_date", "'visit ' || t.visit"),
    _after_last_contact("treatments", "DEB-TACE session", "treatment_date",
                        "'session ' || cast(t.session_number as varchar)"),
    _after_last_contact("staging", "restaging review", "review_date", "'review ' || t.visit"),
    # a grade 5 AE's onset on the death date is the death itself, not a later contact
    _after_last_contact("adverse_events", "AE onset", "onset_date", "'AE ' || t.ae_id || ' (' || t.term || ')'",
                        " and (p.death_date is null or t.onset_date < p.death_date)"),
)


def bound_params(rule: Rule) -> list:
    """The rule's parameters as values (the CTCAE term list from the contract)."""
    from dashboard.contract import CTCAE_SOC
    return [list(CTCAE_SOC) if p == "CTCAE_TERMS" else p for p in rule.params]


def validator_rules() -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.validator)


# the finding columns of the export, in order
COLUMNS = ("site_id", "patient_id", "table", "rule", "detail")


def findings_sql(rules: tuple[Rule, ...] = RULES, patients: str = "cohort") -> tuple[str, list]:
    """(SQL, params) of every finding of `rules` over the snapshot schema's staging views, for the
    patients of the view `patients` (`cohort`: the filters and the site scope; `cohort_all`: every
    patient): the columns COLUMNS, ordered by site, patient, table, rule and detail. The contract's
    table names are bound to the staging views by CTEs, so the rule's text is the validator's."""
    tables = ",\n".join(f"{t} as (select * from {v})" for t, v in TABLE_VIEWS.items())
    parts, params = [], []
    for r in rules:
        parts.append(f"select f.patient_id, ? as \"table\", ? as rule, f.detail from ({r.sql}) f")
        params += [r.table, r.label] + bound_params(r)
    sql = (f"with {tables},\nfound as (\n" + "\nunion all\n".join(parts) + "\n)\n"
           "select c.site_id, f.patient_id, f.\"table\", f.rule, f.detail "
           f"from found f join {patients} c using (patient_id) "
           "order by c.site_id, f.patient_id, f.\"table\", f.rule, f.detail")
    return sql, params
