"""The registry snapshot contract, version 1, as data.

This module is the single place the snapshot format is written down for code: the synthetic
generator writes it, the validator checks it, the staging views read it. The prose version is
docs/snapshot-contract.md. Column names here match the parquet columns and the SQL aliases.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool = False
    accepted: tuple | None = None      # accepted values (codes)
    min: float | None = None           # inclusive lower bound
    max: float | None = None           # inclusive upper bound
    gt: float | None = None            # exclusive lower bound


@dataclass(frozen=True)
class Table:
    name: str
    grain: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    references: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


S, D, I, F, B = pa.string(), pa.date32(), pa.int32(), pa.float64(), pa.bool_()

BCLC_STAGES = ("0", "A", "B", "C", "D")
CHILD_PUGH_CLASSES = ("A", "B", "C")
ETIOLOGIES = ("HBV", "HCV", "HBV+HCV", "alcohol", "MASLD", "other")
SEXES = ("M", "F")
OFF_STUDY_REASONS = ("completed", "death", "lost_to_follow_up", "withdrawn", "transplant", "other")
DRUGS = ("doxorubicin", "epirubicin")
MICROSPHERE_SIZES = ("30-60", "50-100", "100-150")
SEGMENTS = ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "extrahepatic")
MODALITIES = ("CT", "MRI")
RESPONSES = ("CR", "PR", "SD", "PD", "NE")
NON_TARGET_STATUSES = ("absent", "present", "unequivocal_progression")

TABLES: dict[str, Table] = {t.name: t for t in (
    Table("sites", "one row per participating hospital", (
        Column("site_id", S),
        Column("site_name", S),
        Column("activation_date", D, nullable=True),
        Column("target_enrollment", I, nullable=True, min=0),
    ), key=("site_id",)),
    Table("patients", "one row per enrolled patient; baseline values as of the first treatment", (
        Column("patient_id", S),
        Column("site_id", S),
        Column("first_treatment_date", D),
        Column("age_years", I, min=18, max=100),
        Column("sex", S, accepted=SEXES),
        Column("etiology", S, nullable=True, accepted=ETIOLOGIES),
        Column("ecog_ps", I, nullable=True, min=0, max=4),
        Column("child_pugh_score", I, nullable=True, min=5, max=15),
        Column("child_pugh_class", S, nullable=True, accepted=CHILD_PUGH_CLASSES),
        Column("albi_grade", I, nullable=True, min=1, max=3),
        Column("afp_ng_ml", F, nullable=True, min=0),
        Column("tumor_count", I, nullable=True, min=1),
        Column("largest_tumor_cm", F, nullable=True, gt=0),
        Column("has_macrovascular_invasion", B, nullable=True),
        Column("has_extrahepatic_spread", B, nullable=True),
        Column("bclc_stage", S, nullable=True, accepted=BCLC_STAGES),
        Column("is_within_milan", B, nullable=True),
        Column("is_within_up_to_seven", B, nullable=True),
        Column("is_resectable", B, nullable=True),
        Column("last_known_alive_date", D),
        Column("death_date", D, nullable=True),
        Column("off_study_date", D, nullable=True),
        Column("off_study_reason", S, nullable=True, accepted=OFF_STUDY_REASONS),
    ), key=("patient_id",), references=((("site_id",), "sites", ("site_id",)),)),
    Table("treatments", "one row per DEB-TACE session", (
        Column("patient_id", S),
        Column("session_number", I, min=1),
        Column("treatment_date", D),
        Column("drug", S, accepted=DRUGS),
        Column("dose_mg", F, gt=0),
        Column("microsphere_size", S, accepted=MICROSPHERE_SIZES),
        Column("is_superselective", B),
    ), key=("patient_id", "session_number"),
        references=((("patient_id",), "patients", ("patient_id",)),)),
    Table("lesions", "one row per tracked lesion", (
        Column("patient_id", S),
        Column("lesion_id", S),
        Column("segment", S, nullable=True, accepted=SEGMENTS),
        Column("is_target", B),
        Column("is_treated", B),
    ), key=("patient_id", "lesion_id"),
        references=((("patient_id",), "patients", ("patient_id",)),)),
    Table("imaging", "one row per imaging time point (mRECIST assessment)", (
        Column("patient_id", S),
        Column("visit", S),
        Column("imaging_date", D),
        Column("modality", S, nullable=True, accepted=MODALITIES),
        Column("overall_response", S, nullable=True, accepted=RESPONSES),
        Column("local_response", S, nullable=True, accepted=RESPONSES),
        Column("has_new_lesion", B, nullable=True),
    ), key=("patient_id", "visit"),
        references=((("patient_id",), "patients", ("patient_id",)),)),
    Table("lesion_measurements", "one row per lesion per imaging time point", (
        Column("patient_id", S),
        Column("lesion_id", S),
        Column("visit", S),
        Column("viable_diameter_mm", F, nullable=True, min=0),
        Column("non_target_status", S, nullable=True, accepted=NON_TARGET_STATUSES),
    ), key=("patient_id", "lesion_id", "visit"),
        references=((("patient_id", "lesion_id"), "lesions", ("patient_id", "lesion_id")),
                    (("patient_id", "visit"), "imaging", ("patient_id", "visit")))),
    Table("staging", "one row per follow-up restaging review", (
        Column("patient_id", S),
        Column("visit", S),
        Column("review_date", D),
        Column("bclc_stage", S, accepted=BCLC_STAGES),
        Column("is_within_milan", B),
        Column("is_within_up_to_seven", B),
        Column("is_resectable", B),
    ), key=("patient_id", "visit"),
        references=((("patient_id",), "patients", ("patient_id",)),)),
    Table("adverse_events", "one row per adverse-event episode (CTCAE v4.0)", (
        Column("patient_id", S),
        Column("ae_id", S),
        Column("term", S),
        Column("soc", S),
        Column("grade", I, min=1, max=5),
        Column("onset_date", D),
        Column("resolution_date", D, nullable=True),
        Column("is_serious", B),
        Column("is_treatment_related", B),
        Column("session_number", I, nullable=True),
    ), key=("patient_id", "ae_id"),
        references=((("patient_id",), "patients", ("patient_id",)),
                    (("patient_id", "session_number"), "treatments",
                     ("patient_id", "session_number")))),
)}

TABLE_NAMES = tuple(TABLES)

# CTCAE v4.0 terms used by the registry and their system organ class.
CTCAE_SOC = {
    "Fever": "General disorders and administration site conditions",
    "Fatigue": "General disorders and administration site conditions",
    "Abdominal pain": "Gastrointestinal disorders",
    "Nausea": "Gastrointestinal disorders",
    "Vomiting": "Gastrointestinal disorders",
    "Ascites": "Gastrointestinal disorders",
    "Alanine aminotransferase increased": "Investigations",
    "Aspartate aminotransferase increased": "Investigations",
    "Blood bilirubin increased": "Investigations",
    "Platelet count decreased": "Investigations",
    "Hepatic infection": "Infections and infestations",
    "Sepsis": "Infections and infestations",
    "Hepatic failure": "Hepatobiliary disorders",
    "Hepatic hemorrhage": "Hepatobiliary disorders",
    "Portal vein thrombosis": "Hepatobiliary disorders",
    "Cholecystitis": "Hepatobiliary disorders",
    "Biliary fistula": "Hepatobiliary disorders",
    "Hepatobiliary disorders - Other, specify": "Hepatobiliary disorders",
    "Anorexia": "Metabolism and nutrition disorders",
    "Alopecia": "Skin and subcutaneous tissue disorders",
    "Pleural effusion": "Respiratory, thoracic and mediastinal disorders",
}


def child_pugh_class(score: int) -> str:
    """Child-Pugh class from the score: A 5-6, B 7-9, C 10-15 (Pugh 1973)."""
    return "A" if score <= 6 else "B" if score <= 9 else "C"
