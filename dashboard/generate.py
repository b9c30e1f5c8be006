"""Synthetic registry: quarterly data cuts of one simulated HepaSphere DEB-TACE cohort.

The cohort is simulated ONCE, to the last cut-off, with every patient's full true history
(enrollment, DEB-TACE sessions, scans with viable lesion diameters, mRECIST responses, restaging
reviews, adverse events, progression, death, loss to follow-up). Each data cut is then derived by
truncation at its cut-off date: a patient is in a cut when first treated on or before the cut-off,
rows dated after it are dropped, and death, off-study and resolution dates appear only once they
have happened. A later cut therefore only adds patients, rows and follow-up; it never rewrites
what an earlier cut showed.

Calibration follows docs/domain.md section 7 ("Parameters for a synthetic generator"); every
number below that is not in that table is a modelling assumption marked (A). The simulation is
vectorised with numpy over patients (matrices patients x scans, patients x sessions), so 100,000
patients with twelve cuts take seconds, and memory is bounded by the final cohort, not by the
number of cuts.

    generate_registry(root, n_patients=600, seed=1)  ->  [<root>/snapshots/2023-03-31, ...]

Interpretations (A):
- Alive patients still followed are known alive at the cut-off (death ascertainment by registry
  linkage); lost, withdrawn and transplanted patients at their last contact. A loss to follow-up
  is declared (off_study_date) 60-120 days after the last contact.
- Each OS group's baseline hazard is scaled so the hazard ratios redistribute risk inside the
  group without moving its 1-year OS off the table's anchor.
- The session-count table is the realised distribution: planned counts are drawn from a
  shifted distribution so that, after stopping at progression or death, the table is met.
- Restaging uses baseline ECOG and Child-Pugh with the viable tumour of the scan; no viable
  tumour counts as a single nodule <= 2 cm (stage 0 unless ECOG/Child-Pugh say otherwise) and is
  within Milan and up-to-seven, and not resectable.
- Up-to-seven, like Milan, excludes macrovascular invasion and extrahepatic spread.
- Sites appear in a cut once activated; an AE's resolution date once it has happened.
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.special import ndtr
from tqdm import tqdm

from dashboard.contract import (BCLC_STAGES, CHILD_PUGH_CLASSES, CTCAE_SOC, DRUGS, ETIOLOGIES,
                                MICROSPHERE_SIZES, MODALITIES, NON_TARGET_STATUSES,
                                OFF_STUDY_REASONS, RESPONSES, SEGMENTS, SEXES, TABLES)
from dashboard.snapshots import publish

__all__ = ["generate_registry", "cut_dates", "simulate", "Cohort"]

EPOCH = dt.date(1970, 1, 1)
MONTH = 30.4375                  # days per month (analysis plan)
NEVER = 10_000_000               # a day number later than any cut-off ("has not happened")
MAX_DAYS = 100 * 366             # latent event times are capped at 100 years

# ----------------------------------------------------------------------------------------------
# Sites (fictional hospitals; none of these names is a real institution)
SITE_NAMES = (
    "Taipei North General Hospital", "Kaohsiung Harbour Medical Center",
    "Taichung Central General Hospital", "Tainan Riverside Hospital",
    "New Taipei Lotus Memorial Hospital", "Taoyuan Lakeside General Hospital",
    "Hsinchu Science Park Hospital", "Changhua Plains Medical Center",
    "Chiayi Mountain View Hospital", "Keelung Bayside Hospital",
    "Hualien East Coast General Hospital", "Pingtung Southern Cape Hospital",
    "Yilan Valley Hospital", "Taitung Pacific Hospital",
)
EXTRA_CITIES = ("Taipei", "Taichung", "Kaohsiung", "Tainan", "Miaoli", "Nantou", "Yunlin", "Penghu")

# ----------------------------------------------------------------------------------------------
# Calibration (domain.md section 7 unless marked (A))
P_MALE = 0.70                                           # KEE23
AGE_MEAN = {"M": 64.0, "F": 70.0}                       # Normal(., 10), truncated 30-90
ETIOLOGY_BY_SEX = {                                     # HBV, HCV, HBV+HCV, non-B non-C (KEE23)
    "M": (0.483, 0.252, 0.053, 0.213), "F": (0.255, 0.486, 0.053, 0.205)}
NBNC_SPLIT = (0.40, 0.45, 0.15)                         # alcohol, MASLD, other (A)
P_ETIOLOGY_UNKNOWN = 0.03                               # (A)
P_STAGE_C = 0.40                                        # BCLC B 60% / C 40% at entry (A)
CP_SCORES = (5, 6, 7, 8, 9)
CP_PROBS = (0.55, 0.25, 0.14, 0.04, 0.02)               # A 80% (5: 55, 6: 25); B 20% (B7 14%)
ALBI_BY_CP = {"A": (0.55, 0.43, 0.02), "B": (0.05, 0.60, 0.35)}   # (A)
P_ALBI_UNKNOWN = 0.06                                   # (A)
ECOG_C = (0.35, 0.55, 0.10)                             # ECOG 0/1/2 in BCLC C (A)
P_MVI_C, P_MVI_MAIN, P_EHS_C = 0.35, 2 / 3, 0.15        # PRA17 (A)
COUNT_B = {2: 0.20, 3: 0.30, 4: 0.15, 5: 0.15, 6: 0.20}  # 6 = ">5" (A)
COUNT_C = {1: 0.30, 2: 0.15, 3: 0.15, 4: 0.10, 5: 0.10, 6: 0.20}  # (A)
SIZE_MEDIAN_CM, SIZE_SIGMA, SIZE_RANGE = 6.0, np.log(9 / 6) / 0.6745, (1.5, 18.0)  # IQR 4-9 cm
AFP_MEDIAN, AFP_SIGMA = 60.0, np.log(400 / 60) / 0.5244  # 30% > 400 ng/mL (A)
P_AFP_UNKNOWN = 0.08                                    # (A)

# Overall survival: (Weibull shape k, median months) per group; hazard ratios on top.
OS_GROUPS = {"B": (1.2, 30.0), "C": (1.1, 18.0), "C_MVI": (1.0, 7.0)}
HR_CP_B, HR_AFP_400, HR_SIZE_7 = 1.7, 1.5, 1.4
RHO_OS, RHO_TTP = 0.5, 0.5                              # shared frailty (A)
LTFU_PER_YEAR, WITHDRAW_PER_YEAR = 0.05, 0.015          # loss to follow-up 5%/yr; withdrawal (A)

# Best overall response mix by stage (CR, PR, SD, PD): B from PRE10/KAL11, C (A)
BOR_MIX = {"B": (0.25, 0.35, 0.25, 0.15), "C": (0.10, 0.30, 0.30, 0.30)}
# Time to progression after the first follow-up scan, Weibull(k, scale months) for non-PD
# responders, calibrated so that KM median TTP is ~9 months (B) and ~5 months (C).
TTP_SHAPE = 1.3
TTP_SCALE = {"B": 11.0, "C": 5.8}
TTP_BY_RESPONSE = {0: 1.6, 1: 1.0, 2: 0.6}              # CR, PR, SD multipliers (A)

# planned 1..8; realised after stopping at progression/death: 1: ~28%, 2: ~31%, 3: ~26%, 4-8: ~15%
SESSIONS_PLANNED = (0.05, 0.30, 0.35, 0.12, 0.08, 0.05, 0.03, 0.02)
MAX_SESSIONS = 8
P_CONTRADICTION = 0.025                                 # recorded response contradicts (A)
P_UNMEASURED = 0.003                                    # target lesion not measured (A)
P_REVIEW = (0.10, 0.50, 0.20)                           # restaging at scan 1, 2, later (A)
P_TRANSPLANT = 0.10                                     # of those downstaged to Milan (A)

# Adverse events: (term, worst-grade probabilities G1..G5, mode, recurrence, onset delay days,
# duration days, P(treatment related), P(serious) by grade G1..G5).
# mode: "session" = may follow every session; "once" = one episode after one session;
# "free" = disease-related, any time, no session.
PES_SERIOUS = (0.0, 0.08, 0.7, 1.0, 1.0)                # PES prolonging stay (LIMA) (A)
LAB_SERIOUS = (0.0, 0.0, 0.15, 0.8, 1.0)                # (A)
SAE_SERIOUS = (0.0, 1.0, 1.0, 1.0, 1.0)
OTHER_SERIOUS = (0.0, 0.05, 0.6, 1.0, 1.0)
AE_SPECS = (
    # post-embolisation syndrome, worst grade per patient (MAL10, XIA, LIMA)
    ("Fever", (0.40, 0.15, 0.02, 0, 0), "session", 0.45, (0, 2), (1, 5), 0.98, PES_SERIOUS),
    ("Abdominal pain", (0.35, 0.30, 0.06, 0, 0), "session", 0.50, (0, 1), (1, 7), 0.98, PES_SERIOUS),
    ("Nausea", (0.25, 0.10, 0.01, 0, 0), "session", 0.40, (0, 1), (1, 4), 0.95, PES_SERIOUS),
    ("Vomiting", (0.12, 0.06, 0.01, 0, 0), "session", 0.30, (0, 2), (1, 3), 0.95, PES_SERIOUS),
    # laboratory AEs, worst grade per patient (A)
    ("Alanine aminotransferase increased", (0.35, 0.15, 0.08, 0.01, 0), "session", 0.50, (1, 4),
     (5, 28), 0.95, LAB_SERIOUS),
    ("Aspartate aminotransferase increased", (0.40, 0.15, 0.10, 0.01, 0), "session", 0.50, (1, 4),
     (5, 28), 0.95, LAB_SERIOUS),
    ("Blood bilirubin increased", (0.15, 0.08, 0.03, 0.005, 0), "session", 0.40, (1, 7), (7, 42),
     0.85, LAB_SERIOUS),
    # serious AEs (LV16, BILOMA, MAL10); grade split within each is (A)
    ("Hepatic infection", (0, 0, 0.008, 0.002, 0), "once", 0, (7, 45), (14, 60), 0.95, SAE_SERIOUS),
    ("Hepatobiliary disorders - Other, specify", (0, 0.012, 0.018, 0, 0), "once", 0, (7, 60),
     (20, 120), 0.95, SAE_SERIOUS),
    ("Cholecystitis", (0, 0.015, 0.0135, 0.0015, 0), "once", 0, (1, 7), (7, 30), 0.98, SAE_SERIOUS),
    ("Pleural effusion", (0.006, 0.0165, 0.0075, 0, 0), "once", 0, (1, 10), (7, 40), 0.9, SAE_SERIOUS),
    ("Hepatic failure", (0, 0, 0, 0.02, 0), "once", 0, (3, 20), (14, 60), 0.9, SAE_SERIOUS),
    # further terms of the CTCAE list at low rates (A)
    ("Fatigue", (0.20, 0.06, 0.01, 0, 0), "session", 0.30, (0, 5), (3, 21), 0.80, OTHER_SERIOUS),
    ("Anorexia", (0.15, 0.05, 0.005, 0, 0), "session", 0.30, (0, 5), (3, 21), 0.80, OTHER_SERIOUS),
    ("Alopecia", (0.04, 0.01, 0, 0, 0), "once", 0, (14, 30), (60, 180), 1.0, OTHER_SERIOUS),
    ("Platelet count decreased", (0.10, 0.04, 0.01, 0.002, 0), "session", 0.40, (1, 7), (7, 30),
     0.60, LAB_SERIOUS),
    ("Ascites", (0.04, 0.03, 0.01, 0, 0), "free", 0, (0, 0), (14, 90), 0.20, OTHER_SERIOUS),
    ("Portal vein thrombosis", (0, 0.005, 0.005, 0, 0), "free", 0, (0, 0), (30, 120), 0.20,
     OTHER_SERIOUS),
    ("Sepsis", (0, 0, 0, 0.003, 0), "once", 0, (3, 20), (7, 30), 0.80, SAE_SERIOUS),
    ("Hepatic hemorrhage", (0, 0, 0.002, 0.001, 0), "once", 0, (0, 3), (7, 30), 1.0, SAE_SERIOUS),
    ("Biliary fistula", (0, 0.001, 0.002, 0, 0), "once", 0, (14, 60), (30, 120), 0.95, SAE_SERIOUS),
)
P_GRADE5 = 0.01                                          # hepatic failure G5 (MAL10)
P_AE_UNRESOLVED = 0.04                                   # resolution never recorded (A)

AE_TERMS = tuple(s[0] for s in AE_SPECS)
assert all(t in CTCAE_SOC for t in AE_TERMS)
T_HEPATIC_FAILURE = AE_TERMS.index("Hepatic failure")

# Codes used inside the simulation (indices into the contract's code lists)
CR, PR, SD, PD, NE = range(5)
ST_B, ST_C = 2, 3                                        # BCLC_STAGES index
TARGETS, NT_SLOTS = 2, 5          # non-target slots: 3 intrahepatic, portal vein thrombus, extrahepatic
SEGMENT_P = np.array((0.03, 0.08, 0.08, 0.12, 0.14, 0.15, 0.18, 0.22))    # S1..S8 (A)
LESION_IDS = ("T1", "T2", "N1", "N2", "N3", "N4", "N5")


# ----------------------------------------------------------------------------------------------
def _day(d: dt.date) -> int:
    return (d - EPOCH).days


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m, min(d.day, last))


def cut_dates(start_date: dt.date = dt.date(2023, 1, 1), accrual_months: int = 24,
              followup_months: int = 12, cut_interval_months: int = 3) -> list[dt.date]:
    """Cut-off dates: the day before each `cut_interval_months` step after the start (the last
    day of each quarter for a start on the 1st), through the end of accrual + follow-up."""
    total = accrual_months + followup_months
    if total <= 0 or cut_interval_months <= 0:
        raise ValueError("accrual + follow-up and the cut interval must be positive")
    steps = list(range(cut_interval_months, total + 1, cut_interval_months))
    if not steps or steps[-1] != total:
        steps.append(total)
    return [_add_months(start_date, k) - dt.timedelta(days=1) for k in steps]


def _choice(rng, probs, n) -> np.ndarray:
    """Category indices 0..len(probs)-1 (probabilities normalised)."""
    c = np.cumsum(np.asarray(probs, dtype=float))
    return np.minimum(np.searchsorted(c / c[-1], rng.random(n), side="right"), len(c) - 1)


def _truncated(draw, lo, hi, n):
    """Values from draw(k) redrawn until within [lo, hi] (clipped after 30 rounds)."""
    x = draw(n)
    for _ in range(30):
        bad = np.flatnonzero((x < lo) | (x > hi))
        if bad.size == 0:
            break
        x[bad] = draw(bad.size)
    return np.clip(x, lo, hi)


def _ints(rng, lo, hi, shape) -> np.ndarray:
    """Uniform integers lo..hi inclusive (int32: day numbers and offsets)."""
    return rng.integers(lo, hi + 1, shape, dtype=np.int32)


def bclc_stage(cp_score, ecog, mvi, ehs, count, largest_cm) -> np.ndarray:
    """Dashboard staging algorithm (A), domain.md section 4, as BCLC_STAGES indices.

    1. Child-Pugh C or ECOG >= 3 -> D; 2. MVI, extrahepatic spread or ECOG 1-2 -> C;
    3. single nodule <= 2 cm -> 0 (no viable tumour at a review counts here too);
    4. single nodule, or 2-3 nodules all <= 3 cm -> A; 5. anything else -> B.
    """
    stage = np.full(np.broadcast(cp_score, ecog, mvi, ehs, count, largest_cm).shape, ST_B, np.int8)
    stage[(count == 1) | ((count >= 2) & (count <= 3) & (largest_cm <= 3))] = 1
    stage[(count <= 1) & (largest_cm <= 2)] = 0
    stage[np.broadcast_to(mvi | ehs | ((ecog >= 1) & (ecog <= 2)), stage.shape)] = ST_C
    stage[np.broadcast_to((cp_score >= 10) | (ecog >= 3), stage.shape)] = 4
    return stage


def within_milan(count, largest_cm, mvi, ehs):
    """Milan: one nodule <= 5 cm or 2-3 nodules each <= 3 cm; no MVI, no extrahepatic spread.
    On viable tumour at a review, no viable tumour at all counts as within."""
    return (((count <= 1) & (largest_cm <= 5)) | ((count >= 2) & (count <= 3) & (largest_cm <= 3))) \
        & ~mvi & ~ehs


def within_up_to_seven(count, largest_cm, mvi, ehs):
    """Up-to-seven: largest tumour (cm) + number of tumours <= 7, without MVI or extrahepatic
    spread (a Milan extension, so the Milan exclusions apply)."""
    return (largest_cm + count <= 7) & ~mvi & ~ehs


def _running_fmin_before(x: np.ndarray) -> np.ndarray:
    """For each column j, the minimum of x[:, :j] ignoring NaN (NaN for j = 0)."""
    out = np.full_like(x, np.nan)
    out[:, 1:] = np.fmin.accumulate(x, axis=1)[:, :-1]
    return out


def _target_response(s, base, nadir_before):
    """mRECIST target response from sums: CR all zero; PD >= +20% over the nadir (and above it);
    PR <= -30% from baseline; else SD; NE when the sum is unknown."""
    r = np.full(s.shape, SD, np.int8)
    with np.errstate(invalid="ignore"):
        r[s <= 0.7 * base] = PR
        r[(s >= 1.2 * nadir_before) & (s > nadir_before)] = PD
        r[s == 0] = CR
    r[np.isnan(s)] = NE
    return r


# ----------------------------------------------------------------------------------------------
@dataclass
class Cohort:
    """The simulated registry to the last cut-off: full tables plus what varies by cut."""
    tables: dict[str, pa.Table]          # every row that exists by the last cut-off
    visible: dict[str, np.ndarray]       # per table row: first day (epoch) the row can be shown
    ae_resolution: np.ndarray            # adverse_events resolution day (NEVER = none)
    ftd: np.ndarray                      # per patient, epoch days
    end: np.ndarray                      # end of follow-up (death, last contact, off study)
    death: np.ndarray                    # observed death day or NEVER
    off_day: np.ndarray
    off_reason: np.ndarray               # OFF_STUDY_REASONS index, -1 none


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), mask=null).view(pa.date32())


def _codes(vocab, idx, null=None) -> pa.Array:
    return pa.array(list(vocab), pa.string()).take(pa.array(np.asarray(idx, dtype=np.int32), mask=null))


def _table(name: str, cols: dict) -> pa.Table:
    schema = TABLES[name].arrow_schema()
    return pa.Table.from_arrays([pa.array(cols[f.name], f.type) if not isinstance(cols[f.name], pa.Array)
                                 else cols[f.name] for f in schema], schema=schema)


def simulate(n_patients: int = 600, n_sites: int = 12, seed: int = 1,
             start_date: dt.date = dt.date(2023, 1, 1), accrual_months: int = 24,
             horizon: dt.date = dt.date(2025, 12, 31)) -> Cohort:
    """Simulate the whole cohort's true history up to `horizon` (the last cut-off)."""
    if n_patients < 1 or n_sites < 1:
        raise ValueError("n_patients and n_sites must be at least 1")
    rng = np.random.default_rng(seed)
    P = n_patients
    start = _day(start_date)
    hz = _day(horizon)
    accrual_end = min(_day(_add_months(start_date, accrual_months)), hz + 1)
    accrual_days = max(accrual_end - start, 1)

    # --- sites: staggered activation in the first ~6 months, unequal accrual, case mix -----
    names = list(SITE_NAMES[:n_sites])
    for k in range(len(names), n_sites):
        names.append(f"{EXTRA_CITIES[k % len(EXTRA_CITIES)]} Regional Hospital {k + 1}")
    window = min(182, accrual_days // 4)
    act = start + np.sort(_ints(rng, 0, window, n_sites))
    act[0] = start
    weight = rng.lognormal(0.0, 0.7, n_sites)               # a few large centres (A)
    share = weight * (accrual_end - act)
    share = share / share.sum()
    target = np.maximum(5, np.round(n_patients * share / 5) * 5).astype(np.int32)
    dev = rng.normal(0.0, 0.45, n_sites)                     # site share of BCLC C (A)
    lo, hi = -5.0, 5.0
    for _ in range(60):                                      # weighted mean share of C = 40%
        mid = (lo + hi) / 2
        p = 1 / (1 + np.exp(-(np.log(P_STAGE_C / (1 - P_STAGE_C)) + dev + mid)))
        lo, hi = (mid, hi) if (share * p).sum() < P_STAGE_C else (lo, mid)
    site_p_c = p
    site_dox = np.clip(rng.normal(0.6, 0.15, n_sites), 0.1, 0.95)          # drug preference (A)
    site_bead = rng.dirichlet(np.array((0.55, 0.40, 0.05)) * 40, n_sites)   # bead preference (A)
    site_supersel = rng.uniform(0.5, 0.9, n_sites)                          # (A)

    # --- enrollment ----------------------------------------------------------------------------
    site = _choice(rng, share, P)
    ftd = (act[site] + np.floor(rng.random(P) * (accrual_end - act[site]))).astype(np.int32)
    order = np.lexsort((ftd, site))
    site, ftd = site[order], ftd[order]
    first = np.r_[True, site[1:] != site[:-1]]
    idx = np.arange(P)
    seq = idx - np.maximum.accumulate(np.where(first, idx, 0)) + 1
    width = max(4, len(str(int(seq.max()))))
    site_ids = [f"S{k + 1:02d}" for k in range(n_sites)]
    patient_ids = [f"{site_ids[s]}-{q:0{width}d}" for s, q in zip(site.tolist(), seq.tolist())]

    # --- baseline characteristics --------------------------------------------------------------
    is_c = rng.random(P) < site_p_c[site]
    male = rng.random(P) < P_MALE
    age = np.where(male, _truncated(lambda k: rng.normal(AGE_MEAN["M"], 10, k), 30, 90, P),
                   _truncated(lambda k: rng.normal(AGE_MEAN["F"], 10, k), 30, 90, P))
    age = np.round(age).astype(np.int32)
    eti4 = np.where(male, _choice(rng, ETIOLOGY_BY_SEX["M"], P), _choice(rng, ETIOLOGY_BY_SEX["F"], P))
    etiology = np.where(eti4 < 3, eti4, 3 + _choice(rng, NBNC_SPLIT, P))
    etiology_null = rng.random(P) < P_ETIOLOGY_UNKNOWN
    cp = np.array(CP_SCORES)[_choice(rng, CP_PROBS, P)]
    cp_b = cp >= 7
    albi = np.where(cp_b, _choice(rng, ALBI_BY_CP["B"], P), _choice(rng, ALBI_BY_CP["A"], P)) + 1
    albi_null = rng.random(P) < P_ALBI_UNKNOWN

    # BCLC C drivers: ECOG 1-2, MVI, extrahepatic spread; B: ECOG 0, none of them.
    mvi = is_c & (rng.random(P) < P_MVI_C)
    mvi_main = mvi & (rng.random(P) < P_MVI_MAIN)
    ehs = is_c & (rng.random(P) < P_EHS_C)
    p_or = 1 - (1 - P_MVI_C) * (1 - P_EHS_C)
    e0 = ECOG_C[0] / p_or                     # ECOG 0 only with MVI/EHS, keeping ECOG mix 35/55/10
    ecog_with = _choice(rng, (e0, (1 - e0) * ECOG_C[1] / (1 - ECOG_C[0]), (1 - e0) * ECOG_C[2] / (1 - ECOG_C[0])), P)
    ecog_without = 1 + _choice(rng, ECOG_C[1:], P)
    ecog = np.where(is_c, np.where(mvi | ehs, ecog_with, ecog_without), 0).astype(np.int32)

    def counts(table, n):
        c = np.array(list(table))[_choice(rng, list(table.values()), n)]
        many = c == 6
        return np.where(many, 6 + rng.geometric(0.35, n) - 1, c).clip(1, 15)
    count = np.where(is_c, counts(COUNT_C, P), counts(COUNT_B, P))
    def lognorm(k):
        return np.exp(rng.normal(np.log(SIZE_MEDIAN_CM), SIZE_SIGMA, k))
    largest = _truncated(lognorm, *SIZE_RANGE, P)
    # intermediate stage by definition is multinodular beyond "2-3 nodules <= 3 cm" (mostly)
    redo = ~is_c & (count <= 3) & (largest <= 3.0) & (rng.random(P) < 0.8)
    if redo.any():
        largest[redo] = _truncated(lognorm, 3.1, SIZE_RANGE[1], int(redo.sum()))
    largest = np.round(largest, 1)
    afp = np.round(np.clip(np.exp(rng.normal(np.log(AFP_MEDIAN), AFP_SIGMA, P)), 0.8, 500_000), 1)
    afp_null = rng.random(P) < P_AFP_UNKNOWN

    stage = bclc_stage(cp, ecog, mvi, ehs, count, largest)
    milan = within_milan(count, largest, mvi, ehs)
    up7 = within_up_to_seven(count, largest, mvi, ehs)
    res_eligible = (cp <= 6) & (ecog <= 1) & ~ehs & ~mvi_main
    u_res = rng.random(P)
    resectable = u_res < np.where(res_eligible & (count <= 3), 0.35, np.where(res_eligible, 0.03, 0.0))

    # --- survival: Weibull / exponential by stage and MVI, proportional hazards -------------
    frailty = rng.normal(size=P)                             # higher = better prognosis
    group = np.where(stage == ST_C, np.where(mvi_main, 2, 1), 0)
    hr = HR_CP_B ** cp_b * HR_AFP_400 ** (afp > 400) * HR_SIZE_7 ** (largest > 7)
    e_os = -np.log1p(-ndtr(RHO_OS * frailty + np.sqrt(1 - RHO_OS ** 2) * rng.normal(size=P)))
    os_months = np.empty(P)
    for g, (k, med) in enumerate(OS_GROUPS.values()):
        m = group == g
        if not m.any():
            continue
        h12 = np.log(2) * (12 / med) ** k                   # cumulative hazard at 12 months
        s12 = np.exp(-h12)
        lo, hi = 0.01, 10.0                                  # keep the group's 1-year OS at s12
        for _ in range(50):
            c = (lo + hi) / 2
            lo, hi = (lo, c) if np.exp(-c * hr[m] * h12).mean() < s12 else (c, hi)
        scale = med / np.log(2) ** (1 / k)
        os_months[m] = scale * (e_os[m] / (c * hr[m])) ** (1 / k)
    death = ftd + np.clip(np.round(os_months * MONTH), 1, MAX_DAYS).astype(np.int32)
    g5 = rng.random(P) < P_GRADE5                            # fatal hepatic failure after session 1
    death = np.where(g5, ftd + _ints(rng, 3, 28, P), death)
    lost = ftd + np.minimum(rng.exponential(365.25 / -np.log(1 - LTFU_PER_YEAR), P), MAX_DAYS).astype(np.int32)
    withdrawn = ftd + np.minimum(rng.exponential(365.25 / WITHDRAW_PER_YEAR, P), MAX_DAYS).astype(np.int32)
    lost[g5] = NEVER
    withdrawn[g5] = NEVER
    transplant = np.full(P, NEVER, np.int32)

    # --- response category (rank-based within stage group so the mix is exact) --------------
    latent = (0.6 * frailty + 0.5 * (largest <= 5) - 0.4 * cp_b - 0.5 * mvi_main - 0.2 * (count > 5)
              + 0.8 * rng.normal(size=P))
    cat = np.empty(P, np.int8)
    for grp, mix in ((~is_c, BOR_MIX["B"]), (is_c, BOR_MIX["C"])):
        ids = np.flatnonzero(grp)
        if ids.size == 0:
            continue
        ranked = ids[np.argsort(-latent[ids], kind="stable")]
        bounds = np.round(np.cumsum(mix) * ids.size).astype(int)
        cat[ranked] = np.searchsorted(bounds, np.arange(ids.size), side="right").clip(0, 3)

    # --- imaging schedule: baseline <= 14 d before, 4-6 weeks, then every 8-12 weeks ------------
    max_follow = max(hz - int(ftd.min()), 60)
    J = 2 + (max_follow - 28) // 56 + 1
    trel = np.empty((P, J), np.int32)
    trel[:, 0] = -_ints(rng, 0, 14, P)
    trel[:, 1] = _ints(rng, 28, 42, P)
    if J > 2:
        trel[:, 2:] = trel[:, 1:2] + np.cumsum(_ints(rng, 56, 84, (P, J - 2)), axis=1)
    sabs = ftd[:, None] + trel
    label = np.rint(trel / MONTH).astype(np.int32)          # visit 'M<k>'; baseline -> 0
    label[:, 0] = 0

    # progression: latent time, seen at the first scan on/after it
    w = ndtr(RHO_TTP * frailty + np.sqrt(1 - RHO_TTP ** 2) * rng.normal(size=P))
    ttp_scale = np.where(is_c, TTP_SCALE["C"], TTP_SCALE["B"]) * np.select(
        [cat == CR, cat == PR], [TTP_BY_RESPONSE[0], TTP_BY_RESPONSE[1]], TTP_BY_RESPONSE[2])
    tp = trel[:, 1] + 1 + np.round(ttp_scale * (-np.log1p(-w)) ** (1 / TTP_SHAPE) * MONTH)
    tp = np.where(cat == PD, 0, tp)
    ge = trel[:, 1:] >= tp[:, None]
    jp = np.where(ge.any(1), ge.argmax(1) + 1, J)            # scan index of progression
    mech = _choice(rng, (0.40, 0.45, 0.15), P)               # target growth / new lesion / non-target
    mech = np.where(cat == CR, _choice(rng, (0.35, 0.60, 0.05), P), mech)

    # --- lesions: 1-2 intrahepatic targets + non-target slots -----------------------------------
    ntar = np.where(count >= 2, 2, 1)
    tex = np.stack([np.ones(P, bool), ntar == 2], axis=1)
    d0 = np.empty((P, TARGETS))
    d0[:, 0] = np.round(largest * 10)
    d0[:, 1] = np.minimum(d0[:, 0], np.maximum(10, np.round(rng.uniform(0.3, 0.9, P) * d0[:, 0])))
    d0[~tex] = np.nan
    n_nt_intra = np.minimum(count - ntar, 3)
    nt_weight = np.ones((P, 3))
    nt_weight[:, 2] = np.maximum(1, count - ntar - 2)        # last slot stands for the rest
    nex = np.zeros((P, NT_SLOTS), bool)
    nex[:, 0:3] = np.arange(3)[None, :] < n_nt_intra[:, None]
    nex[:, 3] = mvi                                          # portal vein tumour thrombus
    nex[:, 4] = ehs                                          # extrahepatic lesion
    nt_size = rng.uniform(1.0, 1.0 + np.maximum(0.1, np.minimum(3.0, largest) - 1.0)[:, None], (P, 3))
    lesion_exists = np.concatenate([tex, nex], axis=1)       # (P, 7)
    seg = _choice(rng, SEGMENT_P, P * 7).reshape(P, 7)
    seg[:, 5] = -1                                           # thrombus: no segment
    seg[:, 6] = 8                                            # 'extrahepatic'
    treated = np.zeros((P, 7), bool)
    treated[:, :2] = rng.random((P, 2)) < 0.95
    treated[:, 0] |= ~treated[:, 1] & (rng.random(P) < 0.8)  # almost everyone has a treated target
    treated[:, 2:5] = rng.random((P, 3)) < 0.7
    is_target = np.zeros((P, 7), bool)
    is_target[:, :2] = True

    # best ratio of viable diameter per target, by response category
    small = d0 <= 50
    rho = np.where(rng.random((P, 2)) < np.where(small, 0.5, 0.15), 0.0, rng.uniform(0.15, 0.65, (P, 2)))
    rho = np.where((cat == SD)[:, None], rng.uniform(0.78, 1.12, (P, 2)), rho)
    rho = np.where((cat == PD)[:, None], 1.0, rho)
    rho = np.where((cat == CR)[:, None], 0.0, rho)
    all_zero = (cat == PR) & ~np.any((rho > 0) & tex, axis=1)
    absent = rng.random((P, NT_SLOTS)) < np.array((0.1, 0.1, 0.1, 0.1, 0.05))
    has_nt = nex.any(1)
    first_nt = nex.argmax(1)
    force = all_zero & has_nt
    absent[force, first_nt[force]] = False
    rho[all_zero & ~has_nt, 0] = rng.uniform(0.1, 0.6, int((all_zero & ~has_nt).sum()))
    g1 = np.select([cat == CR, cat == PR], [np.where(rng.random(P) < 0.6, 1.0, rng.uniform(0.5, 0.9, P)),
                                            rng.uniform(0.5, 1.0, P)], rng.uniform(0.3, 1.0, P))
    j_cr = np.where(g1 >= 1.0, 1, 2)
    regrow = np.stack([np.ones(P, bool), rng.random(P) < 0.5], axis=1)
    nt_prog_slot = np.where(has_nt, _choice(rng, np.ones(NT_SLOTS), P), 0)
    nt_prog_slot = np.where(nex[np.arange(P), nt_prog_slot], nt_prog_slot, first_nt)
    mech = np.where((mech == 2) & ~has_nt, 1, mech)
    extra_new = (mech == 1) | ((mech == 0) & (rng.random(P) < 0.3))
    new_intra = rng.random(P) < 0.8

    D = np.full((P, J, TARGETS), np.nan, np.float32)
    D[:, 0] = d0
    NS = np.full((P, J, NT_SLOTS), -1, np.int8)
    NS[:, 0] = np.where(nex, 1, -1)
    pre_status = np.where(absent, 0, 1).astype(np.int8)
    rows = np.arange(P)
    for j in range(1, J):
        g = g1 if j == 1 else np.ones(P)
        pre_val = np.round(d0 * (1 + (rho - 1) * g[:, None]))
        prev = D[:, j - 1]
        grown = np.where(prev > 0, np.round(prev * rng.uniform(1.3, 1.8, (P, 2))),
                         np.where(regrow, np.round(rng.uniform(10, 25, (P, 2))), 0.0))
        later = np.round(prev * rng.uniform(1.0, np.where(mech == 0, 1.2, 1.08)[:, None], (P, 2)))
        at = (j == jp)[:, None]
        val = np.where((j < jp)[:, None], pre_val, np.where(at, np.where((mech == 0)[:, None], grown, prev), later))
        D[:, j] = np.where(tex, np.minimum(val, 250.0), np.nan)
        st_pre = np.where((cat == CR)[:, None], np.where((j >= j_cr)[:, None], 0, 1), pre_status).astype(np.int8)
        st = np.where((j < jp)[:, None], st_pre, NS[:, j - 1])
        prog_nt = (j >= jp) & (mech == 2)
        st[rows[prog_nt], nt_prog_slot[prog_nt]] = 2
        NS[:, j] = np.where(nex, st, -1)
    jj = np.arange(J)[None, :]
    has_new = (jj >= jp[:, None]) & extra_new[:, None]

    # --- follow-up end (before transplant) and valid scans -----------------------------------
    def follow_end():
        return np.minimum.reduce([death, lost, withdrawn, transplant])
    end = follow_end()
    scan_ok = (sabs <= hz) & (sabs <= end[:, None]) & (sabs < death[:, None])
    scan_ok[:, 0] = True

    # unmeasured target lesions (follow-up only) and recorded measurements
    unmeasured = (rng.random((P, J, 2), dtype=np.float32) < P_UNMEASURED) & tex[:, None, :] & (jj > 0)[:, :, None]
    Drec = np.where(unmeasured, np.nan, D)

    # --- responses derived from the measurements (mRECIST, domain.md section 3) -------------
    S = np.where(tex[:, None, :], Drec, 0.0).sum(-1, dtype=np.float64)
    tr = _target_response(S, S[:, :1], _running_fmin_before(S))
    tt = tex & treated[:, :2]
    L = np.where(tt[:, None, :], Drec, 0.0).sum(-1, dtype=np.float64)
    local = _target_response(L, L[:, :1], _running_fmin_before(L))
    local[~tt.any(1)] = NE
    nt_prog = (NS == 2).any(-1)
    nt_present = (NS >= 1).any(-1)
    overall = np.where(has_new | nt_prog | (tr == PD), PD,
                       np.where(tr == NE, NE, np.where((tr == CR) & nt_present, PR, tr))).astype(np.int8)
    # deliberate contradictions: the recorded response disagrees with the measurements
    cand = (jj > 0) & (overall == tr) & (tr != NE) & ~has_new & ~nt_prog
    flip = cand & (rng.random((P, J)) < P_CONTRADICTION)
    alt = np.array([PR, SD, PR, SD], np.int8)[np.minimum(tr, 3)]
    alt = np.where((tr == PR) & (rng.random((P, J)) < 0.5), CR, alt)
    overall = np.where(flip, alt, overall).astype(np.int8)
    overall[:, 0] = -1
    local[:, 0] = -1
    del S, L, tr, cand, flip, alt, unmeasured

    # --- restaging reviews on viable tumour --------------------------------------------------
    p_rev = np.array([0.0] + [P_REVIEW[min(j - 1, 2)] for j in range(1, J)])
    review = (rng.random((P, J)) < p_rev[None, :]) & (jj > 0)
    review_day = sabs + _ints(rng, 0, 10, (P, J))
    u_conv = rng.random(P)
    ok_rev = review & scan_ok & (review_day <= np.minimum(end, hz)[:, None])
    del review
    rp, rj = (x.astype(np.int32) for x in np.nonzero(ok_rev))     # restage only at reviews
    r_day = review_day[rp, rj]
    del review_day, ok_rev
    r_new = has_new[rp, rj]
    r_ns = NS[rp, rj]                                             # (reviews, slots)
    r_d = np.where(tex[rp], D[rp, rj], 0.0)
    nt_intra_present = r_ns[:, 0:3] >= 1
    count_v = ((r_d > 0).sum(-1) + (nt_intra_present * nt_weight[rp]).sum(-1)
               + (r_new & new_intra[rp]))
    largest_v = np.maximum(r_d.max(-1) / 10, np.where(nt_intra_present, nt_size[rp], 0).max(-1))
    largest_v = np.where(r_new, np.maximum(largest_v, 1.5), largest_v)
    mvi_v = r_ns[:, 3] >= 1
    ehs_v = (r_ns[:, 4] >= 1) | (r_new & ~new_intra[rp])
    stage_v = bclc_stage(cp[rp], ecog[rp], mvi_v, ehs_v, count_v, largest_v)
    milan_v = within_milan(count_v, largest_v, mvi_v, ehs_v)
    up7_v = within_up_to_seven(count_v, largest_v, mvi_v, ehs_v)
    eligible_v = res_eligible[rp] & ~ehs_v & ~(mvi_v & mvi_main[rp]) & (count_v >= 1) & (count_v <= 3)
    resect_v = eligible_v & (resectable | (u_conv < 0.55))[rp]

    # transplant after downstaging to Milan: follow-up ends (off study 'transplant')
    down = milan_v & ~milan[rp]
    first_down = np.full(P, NEVER, np.int32)
    np.minimum.at(first_down, rp[down], r_day[down])
    tx = (first_down < NEVER) & (rng.random(P) < P_TRANSPLANT)
    transplant = np.where(tx, first_down + _ints(rng, 30, 150, P), NEVER).astype(np.int32)
    end = follow_end()
    scan_ok &= (sabs <= end[:, None]) | (jj == 0)
    r_keep = r_day <= end[rp]
    death_seen = death <= end
    off_reason = np.select([death_seen, transplant == end, withdrawn == end],
                           [OFF_STUDY_REASONS.index("death"), OFF_STUDY_REASONS.index("transplant"),
                            OFF_STUDY_REASONS.index("withdrawn")], OFF_STUDY_REASONS.index("lost_to_follow_up"))
    off_day = np.where(off_reason == OFF_STUDY_REASONS.index("lost_to_follow_up"),
                       end + _ints(rng, 60, 120, P), end)
    death_obs = np.where(death_seen, death, NEVER)

    # --- sessions: 1-8 planned, every 6-10 weeks, stop at progression/death --------------------
    n_plan = 1 + _choice(rng, SESSIONS_PLANNED, P)
    srel = np.zeros((P, MAX_SESSIONS), np.int32)
    srel[:, 1:] = np.cumsum(_ints(rng, 42, 70, (P, MAX_SESSIONS - 1)), axis=1)
    sday = ftd[:, None] + srel
    pd_scan = scan_ok & (overall == PD)
    pd_day = np.where(pd_scan.any(1), np.where(pd_scan, sabs, NEVER).min(1), NEVER)
    sess_ok = ((np.arange(MAX_SESSIONS)[None, :] < n_plan[:, None]) & (sday <= end[:, None])
               & (sday < death[:, None]) & (sday < pd_day[:, None]) & (sday <= hz))
    sess_ok[:, 0] = True
    drug_p = (rng.random(P) >= site_dox[site]).astype(np.int8)       # 0 doxorubicin, 1 epirubicin
    drug = np.where(rng.random((P, MAX_SESSIONS)) < 0.05, 1 - drug_p[:, None], drug_p[:, None])
    vials = 1 + (rng.random((P, MAX_SESSIONS)) < 0.3)
    load = np.array((50.0, 60.0, 75.0))[_choice(rng, (0.3, 0.3, 0.4), P * MAX_SESSIONS)].reshape(P, MAX_SESSIONS)
    delivered = np.where(rng.random((P, MAX_SESSIONS)) < 0.6, 1.0, rng.uniform(0.5, 1.0, (P, MAX_SESSIONS)))
    dose = np.maximum(5.0, np.round(vials * load * delivered * 2) / 2)
    cum_bead = np.cumsum(site_bead[site], axis=1)
    bead_base = (rng.random(P)[:, None] > cum_bead).sum(1).clip(0, 2)
    bead_other = (rng.random((P, MAX_SESSIONS))[:, :, None] > cum_bead[:, None, :]).sum(-1).clip(0, 2)
    bead = np.where(rng.random((P, MAX_SESSIONS)) < 0.15, bead_other, bead_base[:, None])
    supersel = rng.random((P, MAX_SESSIONS)) < site_supersel[site][:, None]

    # --- adverse events: one row per episode ----------------------------------------------------
    ae_parts = []
    last_day = np.minimum(end, death)
    for t, (term, gp, mode, q, delay, dur, related_p, serious_p) in enumerate(AE_SPECS):
        probs = np.array(gp, float)
        worst = _choice(rng, np.r_[1 - probs.sum(), probs], P)
        if t == T_HEPATIC_FAILURE:
            worst[g5] = 0
        if mode == "free":
            pi = np.flatnonzero(worst > 0)
            si = np.full(pi.size, -1)
            grade = worst[pi]
            span = np.maximum(np.minimum(last_day[pi], hz) - ftd[pi], 0)
            onset = ftd[pi] + np.floor(rng.random(pi.size) * (span + 1)).astype(np.int32)
        else:
            keys = np.where(sess_ok, rng.random((P, MAX_SESSIONS)), -1.0)
            anchor = keys.argmax(1)
            occ = sess_ok & (rng.random((P, MAX_SESSIONS)) < q)
            occ[rows, anchor] = True
            occ &= (worst > 0)[:, None]
            gmat = np.where(np.arange(MAX_SESSIONS)[None, :] == anchor[:, None], worst[:, None],
                            1 + np.floor(rng.random((P, MAX_SESSIONS)) * worst[:, None]).astype(np.int64))
            pi, si = np.nonzero(occ)
            grade = gmat[pi, si]
            onset = np.minimum(sday[pi, si] + _ints(rng, delay[0], delay[1], pi.size), last_day[pi])
        n = pi.size
        resol = onset + _ints(rng, dur[0], dur[1], n)
        resol = np.where((resol > last_day[pi]) | (rng.random(n) < P_AE_UNRESOLVED), NEVER, resol)
        serious = rng.random(n) < np.array(serious_p)[grade - 1]
        related = rng.random(n) < related_p
        ae_parts.append((pi, np.full(n, t), grade, onset, resol, serious, related, si + 1))
    pi = np.flatnonzero(g5)                                  # grade 5: onset on the death date
    ae_parts.append((pi, np.full(pi.size, T_HEPATIC_FAILURE), np.full(pi.size, 5), death[pi],
                     np.full(pi.size, NEVER), np.ones(pi.size, bool), np.ones(pi.size, bool),
                     np.ones(pi.size, np.int64)))
    a_pat, a_term, a_grade, a_onset, a_resol, a_serious, a_related, a_sess = (
        np.concatenate([p[i] for p in ae_parts]) for i in range(8))
    del ae_parts
    keep = a_onset <= end[a_pat]
    o = np.lexsort((a_sess, a_term, a_onset, a_pat))
    o = o[keep[o]]
    a_pat, a_term, a_grade, a_onset, a_resol, a_serious, a_related, a_sess = (
        x[o] for x in (a_pat, a_term, a_grade, a_onset, a_resol, a_serious, a_related, a_sess))
    k = np.arange(a_pat.size)
    newp = np.r_[True, a_pat[1:] != a_pat[:-1]] if a_pat.size else np.zeros(0, bool)
    a_no = k - np.maximum.accumulate(np.where(newp, k, 0)) + 1 if a_pat.size else k

    # --- full tables (every row up to the last cut-off) ---------------------------------------
    pid = pa.array(patient_ids, pa.string())
    tables, visible = {}, {}

    tables["sites"] = _table("sites", dict(
        site_id=site_ids, site_name=names, activation_date=_dates(act), target_enrollment=target))
    visible["sites"] = act

    tables["patients"] = _table("patients", dict(
        patient_id=pid, site_id=_codes(site_ids, site), first_treatment_date=_dates(ftd),
        age_years=age, sex=_codes(SEXES, np.where(male, 0, 1)),
        etiology=_codes(ETIOLOGIES, etiology, etiology_null), ecog_ps=ecog,
        child_pugh_score=cp.astype(np.int32),
        child_pugh_class=_codes(CHILD_PUGH_CLASSES, np.searchsorted([6, 9], cp)),
        albi_grade=pa.array(albi.astype(np.int32), mask=albi_null), afp_ng_ml=pa.array(afp, mask=afp_null),
        tumor_count=count.astype(np.int32), largest_tumor_cm=largest,
        has_macrovascular_invasion=mvi, has_extrahepatic_spread=ehs,
        bclc_stage=_codes(BCLC_STAGES, stage), is_within_milan=milan, is_within_up_to_seven=up7,
        is_resectable=resectable,
        last_known_alive_date=_dates(ftd), death_date=_dates(ftd, np.ones(P, bool)),
        off_study_date=_dates(ftd, np.ones(P, bool)), off_study_reason=_codes(OFF_STUDY_REASONS, np.zeros(P), np.ones(P, bool))))
    visible["patients"] = ftd

    p_s, k_s = np.nonzero(sess_ok & (sday <= hz))
    tables["treatments"] = _table("treatments", dict(
        patient_id=pid.take(p_s), session_number=(k_s + 1).astype(np.int32), treatment_date=_dates(sday[p_s, k_s]),
        drug=_codes(DRUGS, drug[p_s, k_s]), dose_mg=dose[p_s, k_s],
        microsphere_size=_codes(MICROSPHERE_SIZES, bead[p_s, k_s]), is_superselective=supersel[p_s, k_s]))
    visible["treatments"] = sday[p_s, k_s]

    p_l, k_l = np.nonzero(lesion_exists)
    # non-target ids are numbered in slot order among the patient's existing non-target lesions
    nt_rank = np.cumsum(lesion_exists[:, 2:], axis=1) - 1
    lid = np.where(k_l < 2, k_l, 2 + nt_rank[p_l, np.maximum(k_l - 2, 0)])
    seg_l = seg[p_l, k_l]
    tables["lesions"] = _table("lesions", dict(
        patient_id=pid.take(p_l), lesion_id=_codes(LESION_IDS, lid), segment=_codes(SEGMENTS, np.maximum(seg_l, 0), seg_l < 0),
        is_target=is_target[p_l, k_l], is_treated=treated[p_l, k_l]))
    visible["lesions"] = ftd[p_l]

    scan_ok &= sabs <= hz
    modality_p = (rng.random(P) < 0.3).astype(np.int8)
    modality = np.where(rng.random((P, J)) < 0.1, 1 - modality_p[:, None], modality_p[:, None])
    p_i, j_i = np.nonzero(scan_ok)
    max_label = int(label.max()) if label.size else 0
    visits = ["baseline"] + [f"M{m}" for m in range(1, max_label + 1)]
    scan_visible = np.maximum(sabs, ftd[:, None])
    tables["imaging"] = _table("imaging", dict(
        patient_id=pid.take(p_i), visit=_codes(visits, label[p_i, j_i]), imaging_date=_dates(sabs[p_i, j_i]),
        modality=_codes(MODALITIES, modality[p_i, j_i]),
        overall_response=_codes(RESPONSES, np.maximum(overall[p_i, j_i], 0), j_i == 0),
        local_response=_codes(RESPONSES, np.maximum(local[p_i, j_i], 0), j_i == 0),
        has_new_lesion=has_new[p_i, j_i]))
    visible["imaging"] = scan_visible[p_i, j_i]
    del p_i, j_i, modality, overall, local, has_new

    m_mask = scan_ok[:, :, None] & lesion_exists[:, None, :]
    p_m, j_m, k_m = np.nonzero(m_mask)
    viable = np.where(k_m < 2, Drec[p_m, j_m, np.minimum(k_m, 1)], np.nan)
    nts = np.where(k_m >= 2, NS[p_m, j_m, np.maximum(k_m - 2, 0)], -1)
    lid_m = np.where(k_m < 2, k_m, 2 + nt_rank[p_m, np.maximum(k_m - 2, 0)])
    tables["lesion_measurements"] = _table("lesion_measurements", dict(
        patient_id=pid.take(p_m), lesion_id=_codes(LESION_IDS, lid_m), visit=_codes(visits, label[p_m, j_m]),
        viable_diameter_mm=pa.array(viable, pa.float64(), from_pandas=True),
        non_target_status=_codes(NON_TARGET_STATUSES, np.maximum(nts, 0), nts < 0)))
    visible["lesion_measurements"] = scan_visible[p_m, j_m]
    del p_m, j_m, k_m, m_mask, viable, nts, lid_m, D, Drec, NS, scan_visible

    rp, rj, r_day, stage_v, milan_v, up7_v, resect_v = (
        x[r_keep] for x in (rp, rj, r_day, stage_v, milan_v, up7_v, resect_v))
    tables["staging"] = _table("staging", dict(
        patient_id=pid.take(rp), visit=_codes(visits, label[rp, rj]), review_date=_dates(r_day),
        bclc_stage=_codes(BCLC_STAGES, stage_v), is_within_milan=milan_v,
        is_within_up_to_seven=up7_v, is_resectable=resect_v))
    visible["staging"] = r_day

    in_hz = a_onset <= hz
    ae_width = max(3, len(str(int(a_no.max())))) if a_no.size else 3
    ae_vocab = [f"AE{i:0{ae_width}d}" for i in range(int(a_no.max()) + 1 if a_no.size else 1)]
    a_pat, a_term, a_grade, a_onset, a_resol, a_serious, a_related, a_sess, a_no = (
        x[in_hz] for x in (a_pat, a_term, a_grade, a_onset, a_resol, a_serious, a_related, a_sess, a_no))
    tables["adverse_events"] = _table("adverse_events", dict(
        patient_id=pid.take(a_pat), ae_id=_codes(ae_vocab, a_no), term=_codes(AE_TERMS, a_term),
        soc=_codes([CTCAE_SOC[t] for t in AE_TERMS], a_term), grade=a_grade.astype(np.int32),
        onset_date=_dates(a_onset), resolution_date=_dates(np.minimum(a_resol, NEVER)),
        is_serious=a_serious, is_treatment_related=a_related,
        session_number=pa.array(np.maximum(a_sess, 0).astype(np.int32), mask=a_sess <= 0)))
    visible["adverse_events"] = a_onset

    return Cohort(tables=tables, visible=visible, ae_resolution=a_resol, ftd=ftd, end=end,
                  death=death_obs, off_day=off_day, off_reason=off_reason)


def cut_tables(cohort: Cohort, cutoff: dt.date) -> dict[str, pa.Table]:
    """The data cut at `cutoff`: patients first treated by then, rows dated by then."""
    c = _day(cutoff)
    out = {}
    for name, table in cohort.tables.items():
        keep = cohort.visible[name] <= c
        out[name] = table if keep.all() else table.filter(pa.array(keep))
    inc = cohort.ftd <= c
    pt = out["patients"]
    death = cohort.death[inc]
    off = cohort.off_day[inc]
    replace = {
        "last_known_alive_date": _dates(np.minimum(cohort.end[inc], c)),
        "death_date": _dates(np.minimum(death, c), death > c),
        "off_study_date": _dates(np.minimum(off, c), off > c),
        "off_study_reason": _codes(OFF_STUDY_REASONS, np.maximum(cohort.off_reason[inc], 0), off > c),
    }
    for col, arr in replace.items():
        pt = pt.set_column(pt.schema.get_field_index(col), pt.schema.field(col), arr)
    out["patients"] = pt
    ae = out["adverse_events"]
    res = cohort.ae_resolution[cohort.visible["adverse_events"] <= c]
    i = ae.schema.get_field_index("resolution_date")
    out["adverse_events"] = ae.set_column(i, ae.schema.field(i), _dates(np.minimum(res, c), res > c))
    return out


def _release_free_memory() -> None:
    """Hand the simulation's freed scratch memory back to the OS (glibc keeps it otherwise)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def generate_registry(root, n_patients: int = 600, n_sites: int = 12, seed: int = 1,
                      cut_interval_months: int = 3, accrual_months: int = 24, followup_months: int = 12,
                      start_date: dt.date = dt.date(2023, 1, 1), last_cut_only: bool = False,
                      progress: bool = True) -> list[Path]:
    """Write the synthetic registry's data cuts under `<root>/snapshots/<cut-off>/`.

    One cohort of `n_patients` is accrued over `accrual_months` from `start_date` at `n_sites`
    hospitals and followed for `followup_months` more; a cut is written every
    `cut_interval_months` (only the final one with `last_cut_only`). Same seed -> identical
    files and manifests. Existing snapshots with the same id are replaced. Returns the paths.
    """
    cuts = cut_dates(start_date, accrual_months, followup_months, cut_interval_months)
    if last_cut_only:
        cuts = cuts[-1:]
    bar = tqdm(total=1 + len(cuts), disable=not progress, desc="synthetic registry", unit="step")
    try:
        cohort = simulate(n_patients, n_sites, seed, start_date, accrual_months, cuts[-1])
        _release_free_memory()
        bar.update(1)

        def write(cut: dt.date) -> Path:
            created = dt.datetime.combine(cut + dt.timedelta(days=1), dt.time(6, 0), dt.timezone.utc)
            return publish(Path(root), cut.isoformat(), cut, cut_tables(cohort, cut), source="synthetic",
                           created_at=created, replace=True)

        paths = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            for path in pool.map(write, cuts):
                paths.append(path)
                bar.update(1)
    finally:
        bar.close()
    return paths
