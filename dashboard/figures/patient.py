"""The patient view's timeline: one lane per kind of event, x in months from the first DEB-TACE (days / 30.4375)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.common import BOR_COLOURS, base_layout

DAYS_PER_MONTH = 30.4375
LANES = ["Sessions", "Scans", "Adverse events", "Restaging", "Follow-up"]     # top to bottom
GRADE_COLOURS = {1: "#DDCC77", 2: "#EE8866", 3: "#CC6677", 4: "#882255", 5: "#000000"}


def months(dates, t0) -> list[float]:
    """Months from t0 of each date (None where the date is missing)."""
    return [None if pd.isna(d) else (pd.Timestamp(d) - pd.Timestamp(t0)).days / DAYS_PER_MONTH for d in dates]


def _day(d) -> str:
    return "–" if pd.isna(d) else pd.Timestamp(d).strftime("%Y-%m-%d")


def timeline_figure(baseline: pd.Series, sessions: pd.DataFrame, scans: pd.DataFrame, aes: pd.DataFrame,
                    restaging: pd.DataFrame) -> go.Figure:
    t0 = baseline["first_treatment_date"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=months(sessions["treatment_date"], t0), y=["Sessions"] * len(sessions), mode="markers", name="DEB-TACE session",
        marker=dict(symbol="triangle-down", size=13, color="#332288"),
        hovertext=[f"Session {n}: {_day(d)}<br>{drug} {dose} mg, beads {beads}" for n, d, drug, dose, beads in zip(
            sessions["session_number"], sessions["treatment_date"], sessions["drug"], sessions["dose_mg"],
            sessions["microsphere_size"])], hoverinfo="text"))
    for response in [*BOR_COLOURS, None]:
        part = scans[scans["overall_response"].isna()] if response is None else \
            scans[scans["overall_response"] == response]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=months(part["imaging_date"], t0), y=["Scans"] * len(part), mode="markers",
            name=f"Scan: {response or 'no response recorded'}",
            marker=dict(symbol="circle", size=12, color=BOR_COLOURS.get(response, "#FFFFFF"),
                        line=dict(color="#495057", width=1)),
            hovertext=[f"{v}: {_day(d)}<br>overall {o or '–'}, local {lr or '–'}" for v, d, o, lr in zip(
                part["visit"], part["imaging_date"], part["overall_response"], part["local_response"])],
            hoverinfo="text"))
    for grade, colour in GRADE_COLOURS.items():
        part = aes[aes["grade"] == grade]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=months(part["onset_date"], t0), y=["Adverse events"] * len(part), mode="markers",
            name=f"AE grade {grade}", marker=dict(symbol="square", size=11, color=colour),
            hovertext=[f"{term}, grade {grade}{' (serious)' if s else ''}<br>onset {_day(d)}" for term, s, d in zip(
                part["term"], part["is_serious"], part["onset_date"])], hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=months(restaging["review_date"], t0), y=["Restaging"] * len(restaging), mode="markers",
        name="Restaging review", marker=dict(symbol="diamond", size=12, color="#44AA99"),
        hovertext=[f"{v}: {_day(d)}<br>BCLC {b or '–'}" for v, d, b in zip(
            restaging["visit"], restaging["review_date"], restaging["bclc_stage"])], hoverinfo="text"))
    dead = not pd.isna(baseline["death_date"])
    end = baseline["death_date"] if dead else baseline["last_known_alive_date"]
    if not pd.isna(end):
        fig.add_trace(go.Scatter(
            x=months([end], t0), y=["Follow-up"], mode="markers", name="Death" if dead else "Last contact",
            marker=dict(symbol="x" if dead else "line-ns-open", size=14, color="#000000", line=dict(width=2)),
            hovertext=[f"{'Death' if dead else 'Last contact'}: {_day(end)}"], hoverinfo="text"))
    base_layout(fig, height=340)
    fig.update_layout(legend=dict(orientation="v", y=1, x=1.01, yanchor="top", xanchor="left"),
                      margin=dict(l=110, r=10, t=20, b=50))
    fig.update_xaxes(title_text="Months from first DEB-TACE", rangemode="tozero")
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(LANES)), range=[-0.6, len(LANES) - 0.4])
    return fig
