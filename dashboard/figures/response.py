"""Tumour response figures (mRECIST): waterfall, best-response distribution, spider, swimmer.

Pure functions: the rows of an export in, a plotly Figure out. A highlighted patient (clicked in
the waterfall) is drawn emphasised in every figure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

try:                                # plotly's fast JSON engine; without it, Python's repr
    import orjson
except ImportError:                 # pragma: no cover
    orjson = None

from dashboard.analytics.response import waterfall_positions
from dashboard.figures.builder import Figure
from dashboard.figures.common import BOR_COLOURS, NO_PATIENTS, base_layout, empty_figure

BOR_ORDER = ["CR", "PR", "SD", "PD", "NE"]
BOR_NAMES = {"CR": "CR", "PR": "PR", "SD": "SD", "PD": "PD", "NE": "NE"}
CAP = 100.0                 # bars and points above +100% are drawn at the cap and marked
DAYS_PER_MONTH = 30.4375
HIGHLIGHT = "#000000"
MODEBAR_PX = 28


def top_legend(height: int, below_modebar: bool = True) -> dict:
    """A legend at the top of the figure (not of the plot area, whose top moves when a resize
    re-wraps the legend), under the modebar; the top margin leaves room for it."""
    top = MODEBAR_PX if below_modebar else 4
    return dict(orientation="h", yref="container", y=1 - top / height, yanchor="top", xref="container",
                x=0.01, xanchor="left")
REFERENCE_LINES = ((20, "+20%"), (-30, "−30%"))


def _reference_lines(fig: Figure):
    for y, label in REFERENCE_LINES:
        fig.add_hline(y=y, line=dict(color="#495057", width=1.2, dash="dash"),
                      annotation=dict(text=label, font=dict(size=12, color="#495057"), xanchor="left",
                                      bgcolor="rgba(255,255,255,0.8)"),
                      annotation_position="right")


NOT_RECORDED = "not recorded"


def _recorded(values) -> np.ndarray:
    """Values for a hover, "not recorded" where the source did not record one (a null BCLC stage)."""
    values = np.asarray(values, dtype=object)
    missing = pd.isna(values)
    return np.where(missing, NOT_RECORDED, values) if missing.any() else values


def _response_text(response, visit) -> np.ndarray:
    """A scan's recorded response for a hover: "baseline" at baseline (no response there), "not
    recorded" at a follow-up without one (a local response not assessed)."""
    response = np.asarray(response, dtype=object).copy()
    missing = pd.isna(response)
    if missing.any():
        at_baseline = np.asarray(visit, dtype=object) == "baseline"
        response[missing] = np.where(at_baseline[missing], "baseline", NOT_RECORDED)
    return response


def _text(values) -> np.ndarray:
    """Strings as a numpy unicode array: plotly's JSON encoder turns it into a list in one call
    (an object array is walked value by value, which at 100,000 bars was most of the callback's
    time). Missing values stay missing (an object array)."""
    array = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(array, skipna=False) == "string":
        # every value a str (the usual case): numpy's cast gives the same array as the pandas route
        # below, without its Series and isna (measured: 75 vs 180 us for 570 patient ids)
        return array.astype(str)
    values = pd.Series(values)
    if values.isna().any():
        return values.astype(object).where(values.notna(), None).to_numpy()
    return values.astype(str).to_numpy(dtype=str)


def _number_text(values) -> np.ndarray:
    """Numbers as the shortest strings that read back as the same float (Python's repr, or
    orjson's, which writes the same shortest round-trip digits four times faster; JavaScript
    parses either to the same double): hover formats such as %{customdata[3]:+.1f} print them
    exactly as they print the number, and customdata stays one unicode array. Missing values: ''."""
    values = np.asarray(values, dtype=float)
    if orjson is not None and len(values) and np.isfinite(values).all():
        return _split_fields(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1], len(values))
    return np.array(["" if v != v else repr(v) for v in values.tolist()], dtype=str)


def _split_fields(raw: bytes, n: int) -> np.ndarray:
    """The `n` comma-separated ASCII fields of `raw` as a unicode array: the same array as
    np.array(raw.decode().split(","), dtype=str), cut in numpy without a Python string per field
    (measured on 3,866 numbers: 0.2 vs 0.7 ms). A numpy unicode string is its UCS-4 code points
    (an ASCII byte's code point is the byte) padded with NULs: each field is the window of the
    widest field's width starting at the field, its code points past the field's end zeroed."""
    chars = np.frombuffer(raw, dtype=np.uint8)
    commas = np.flatnonzero(chars == ord(","))
    starts = np.append(0, commas + 1)
    lengths = np.append(commas, len(chars)) - starts
    width = int(lengths.max())
    points = np.append(chars, np.zeros(width, dtype=np.uint8)).astype(np.uint32)    # the last window fits
    fields = np.lib.stride_tricks.sliding_window_view(points, width)[starts]       # a copy, (n, width)
    fields *= np.arange(width) < lengths[:, None]
    return fields.view(f"U{width}").reshape(n)


MAX_BARS = 2000          # bars drawn in a waterfall at most (evenly spaced in sorted order above that)
NO_BAR = "No patient in the current filter has a measurable change from baseline."


def waterfall_figure(rows: pd.DataFrame, highlight: str | None = None, cap: float = CAP,
                     max_bars: int = MAX_BARS) -> Figure:
    """One bar per evaluable patient in the given order (largest increase first), coloured by the
    response its measurements imply (by BOR for rows without implied_response), a bar whose BOR
    contradicts them hatched and marked; dashed lines at +20% and -30%; bars above `cap` drawn at
    the cap with a marker. Input: rows of the waterfall export.

    Built column-wise (numpy arrays, no loop over bars). Above `max_bars` patients, `max_bars`
    evenly spaced bars of the sorted order are drawn (the first and last included, and the
    highlighted patient), each as wide as the patients it stands for: a bar narrower than a pixel
    cannot be seen or hovered, and 100,000 bars made a 6.7 MB figure. The legend counts and the
    axis title count every patient; the export has every bar.
    A bar's x is its patient (the category); customdata is [site, BCLC stage, visit of the best
    change, best change] as strings (the patient is not repeated there)."""
    if rows.empty:
        return empty_figure(NO_BAR)
    n = len(rows)
    implied = "implied_response" in rows.columns
    counts = rows["implied_response" if implied else "bor"].value_counts()
    n_contradicts = int(rows["contradicts"].sum()) if implied else None
    keep = waterfall_positions(n, max_bars)
    if keep is not None:
        if highlight is not None:
            keep = np.union1d(keep, np.flatnonzero(rows["patient_id"].to_numpy(dtype=object) == highlight))
        rows = rows.iloc[keep]
    return waterfall_bars_figure(rows, n, counts, highlight, cap, n_contradicts)


def waterfall_bars_figure(rows: pd.DataFrame, n: int, counts, highlight: str | None = None,
                          cap: float = CAP, n_contradicts=None) -> Figure:
    """waterfall_figure from the bars it draws: `rows` the drawn bars in plotting order (every bar,
    or the evenly spaced ones and the highlighted patient's), `n` the evaluable patients and
    `counts` their number per colour level (a dict or Series: per implied response when the rows have
    implied_response, else per BOR), for the legend and the axis title; `n_contradicts` the evaluable
    patients whose BOR contradicts the measurements (the legend's count; the drawn ones' when None).
    The Tumour response card gets the drawn bars from SQL (exports.response.waterfall_bars) without
    loading every patient's row. De-identified rows (no patient_id: a sponsor's) are drawn as
    numbered bars whose hover shows the best change and responses only; `counts` may hold "<5"."""
    if rows.empty:
        return empty_figure(NO_BAR)
    if "patient_id" not in rows.columns:
        return _deidentified_waterfall(rows, n, counts, cap, n_contradicts)
    patient = _text(rows["patient_id"])
    best = rows["best_pct_change"].to_numpy(dtype=float)
    shown = np.minimum(best, cap)
    level_of, recorded, contradicts = _bar_levels(rows)
    change = _number_text(best)
    visit = rows["best_visit"].to_numpy(dtype=object)
    missing = pd.isna(visit)
    if missing.any():                   # as Series.fillna(""), without the Series
        visit = np.where(missing, "", visit)
    columns = [_text(rows["site_id"]), _text(_recorded(rows["bclc_stage"])), _text(visit), change]
    implied = "implied_response" in rows.columns
    if implied:
        columns.append(_recorded_text(recorded, level_of, contradicts))
    custom = np.column_stack(columns)
    fig = Figure()
    for level in BOR_ORDER + sorted(set(pd.unique(level_of)) - set(BOR_ORDER)):
        index = np.flatnonzero(level_of == level)
        if not len(index):
            continue
        ids = patient[index]
        # the highlighted patient's bar outlined; otherwise one width for the whole trace
        outline = np.where(ids == highlight, 3, 0) if highlight is not None and (ids == highlight).any() else 0
        marker = dict(color=BOR_COLOURS.get(level, "#888888"), line=dict(color=HIGHLIGHT, width=outline))
        if implied and contradicts[index].any():
            marker["pattern"] = _CONTRADICTION_PATTERN(contradicts[index])
        fig.add_bar(
            x=ids, y=shown[index], name=_legend_name(level, counts), marker=marker,
            customdata=custom[index],
            hovertemplate="<b>%{x}</b><br>site %{customdata[0]} · BCLC %{customdata[1]}"
                          + (f"<br>measurements imply {level}<br>%{{customdata[4]}}" if implied else
                             f"<br>best response {level}")
                          + "<br>best change %{customdata[3]:+.1f}% at %{customdata[2]}<extra></extra>")
    if implied:
        _contradiction_marks(fig, patient, shown, contradicts, custom[:, 4], change, n_contradicts)
    over = np.flatnonzero(best > cap)
    if len(over):
        fig.add_scatter(
            x=patient[over], y=np.full(len(over), cap), mode="markers+text", name=f"> +{cap:.0f}%",
            marker=dict(symbol="triangle-up", size=11, color="#212529"),
            text=[f"{v:+.0f}%" for v in best[over]], textposition="top center",
            textfont=dict(size=11), cliponaxis=False, customdata=np.column_stack([patient[over], change[over]]),
            hovertemplate="<b>%{customdata[0]}</b><br>best change %{customdata[1]:+.1f}% "
                          f"(bar cut at +{cap:.0f}%)<extra></extra>")
    hit = np.flatnonzero(patient == highlight) if highlight is not None else []
    if len(hit):
        fig.add_annotation(x=highlight, y=max(float(shown[hit[0]]), 0), text=f"<b>{highlight}</b>", showarrow=True,
                           arrowhead=2, ax=0, ay=-36, font=dict(size=12), bgcolor="rgba(255,255,255,0.9)")
    return _waterfall_layout(fig, patient, shown, n, len(over), show_ids=n <= 40)


CONTRADICTS_NAME = "Recorded BOR contradicts"


def _CONTRADICTION_PATTERN(contradicts: np.ndarray) -> dict:
    """Hatching on the bars whose recorded BOR contradicts the measurements, none on the others."""
    return dict(shape=np.where(contradicts, "/", ""), fgcolor="#212529", size=5, solidity=0.35)


def _bar_levels(rows: pd.DataFrame):
    """(colour level, recorded BOR, contradicts) per bar: the implied response when the rows have it
    (the waterfall export's rows), else the BOR with no contradiction."""
    bor = rows["bor"].to_numpy(dtype=object)
    if "implied_response" not in rows.columns:
        return bor, bor, np.zeros(len(rows), dtype=bool)
    implied = rows["implied_response"].to_numpy(dtype=object)
    contradicts = rows["contradicts"].to_numpy(dtype=object)
    contradicts = np.array([bool(v) if v is not None and v == v else False for v in contradicts.tolist()], dtype=bool)
    return implied, bor, contradicts


def _recorded_text(recorded, implied, contradicts) -> np.ndarray:
    """'recorded PR' where the BOR agrees, 'recorded PR, measurements imply SD' where it contradicts, and
    'recorded PD (explained by new or non-target lesions)' where it differs under the check's exceptions."""
    def text(r, i, c):
        if c:
            return f"recorded {r}, measurements imply {i}"
        return f"recorded {r}" if r == i or r == "NE" else f"recorded {r} (explained by new or non-target lesions)"
    return np.array([text(r, i, c) for r, i, c in zip(recorded.tolist(), implied.tolist(), contradicts.tolist())],
                    dtype=str)


def _contradiction_marks(fig: Figure, bars: np.ndarray, shown: np.ndarray, contradicts: np.ndarray,
                         text: np.ndarray, change: np.ndarray, n_contradicts) -> None:
    """A mark at the tip of each drawn bar whose recorded BOR contradicts the measurements, and the legend
    entry saying so with the count of every such patient (n_contradicts, or the drawn ones): a hatched
    empty bar of height 0 (a scatter's legend entry would turn the horizontal legend into a column)."""
    index = np.flatnonzero(contradicts)
    count = len(index) if n_contradicts is None else n_contradicts
    if not len(index) and not (isinstance(count, str) or count):
        return
    fig.add_bar(x=bars[:1], y=[0], name=f"{CONTRADICTS_NAME} ({count if isinstance(count, str) else int(count)})",
                legendgroup="contradicts", hoverinfo="skip",
                marker=dict(color="#ffffff", line=dict(color="#212529", width=1),
                            pattern=dict(shape="/", fgcolor="#212529", size=5, solidity=0.35)))
    if len(index):
        fig.add_scatter(
            x=bars[index], y=shown[index], mode="markers", name=CONTRADICTS_NAME, showlegend=False,
            legendgroup="contradicts",
            marker=dict(symbol="x-thin", size=8, color="#212529", line=dict(color="#212529", width=2)),
            customdata=np.column_stack([text[index], change[index]]),
            hovertemplate="<b>%{x}</b><br>%{customdata[0]}<br>best change %{customdata[1]:+.1f}%<extra></extra>")


def is_contradiction_legend(trace) -> bool:
    """The legend entry of the contradiction marks (a bar of height 0), not a patient's bar."""
    return str(trace["name"] if isinstance(trace, dict) else trace.name).startswith(CONTRADICTS_NAME)


def _legend_name(level: str, counts) -> str:
    """'PR (12)', or 'PR (<5)' where the count is suppressed."""
    count = counts.get(level, 0)
    return f"{BOR_NAMES.get(level, level)} ({count if isinstance(count, str) else int(count)})"


def _deidentified_waterfall(rows: pd.DataFrame, n: int, counts, cap: float = CAP, n_contradicts=None) -> Figure:
    """The waterfall of de-identified rows (best_pct_change, bor, and the implied response with the
    contradiction flag when present: a sponsor's): bars numbered in the order drawn, the hover saying the
    best change and responses only (no patient, site, stage or visit)."""
    best = rows["best_pct_change"].to_numpy(dtype=float)
    shown = np.minimum(best, cap)
    level_of, recorded, contradicts = _bar_levels(rows)
    implied = "implied_response" in rows.columns
    bar = np.arange(1, len(rows) + 1).astype(str)
    change = _number_text(best)
    text = _recorded_text(recorded, level_of, contradicts) if implied else None
    fig = Figure()
    for level in BOR_ORDER + sorted(set(pd.unique(level_of)) - set(BOR_ORDER)):
        index = np.flatnonzero(level_of == level)
        if not len(index):
            continue
        marker = dict(color=BOR_COLOURS.get(level, "#888888"), line=dict(width=0))
        if implied and contradicts[index].any():
            marker["pattern"] = _CONTRADICTION_PATTERN(contradicts[index])
        fig.add_bar(x=bar[index], y=shown[index], name=_legend_name(level, counts), marker=marker,
                    customdata=(np.column_stack([change[index], text[index]]) if implied else change[index][:, None]),
                    hovertemplate="best change %{customdata[0]:+.1f}%<br>"
                                  + (f"measurements imply {level}<br>%{{customdata[1]}}" if implied else
                                     f"best response {level}") + "<extra></extra>")
    if implied:
        _contradiction_marks(fig, bar, shown, contradicts, text, change, n_contradicts)
    over = np.flatnonzero(best > cap)
    if len(over):
        fig.add_scatter(
            x=bar[over], y=np.full(len(over), cap), mode="markers+text", name=f"> +{cap:.0f}%",
            marker=dict(symbol="triangle-up", size=11, color="#212529"),
            text=[f"{v:+.0f}%" for v in best[over]], textposition="top center", textfont=dict(size=11),
            cliponaxis=False, customdata=change[over][:, None],
            hovertemplate=f"best change %{{customdata[0]:+.1f}}% (bar cut at +{cap:.0f}%)<extra></extra>")
    return _waterfall_layout(fig, bar, shown, n, len(over), show_ids=False)


def _waterfall_layout(fig: Figure, bars: np.ndarray, shown: np.ndarray, n: int, n_over: int,
                      show_ids: bool) -> Figure:
    """The waterfall's reference lines, axes and layout: `bars` the x categories in the order drawn,
    `shown` their heights (capped), `n` the evaluable patients, `n_over` the bars cut at the cap."""
    _reference_lines(fig)
    drawn = len(bars)
    title = (f"Patients (n = {n}), largest increase to largest decrease" if drawn == n else
             f"Patients (n = {n:,}; {drawn:,} evenly spaced bars drawn), largest increase to largest decrease")
    gap = 0 if drawn < n else 0.15 if drawn > 40 else 0.3       # sampled bars touch: no false stripes
    fig.update_layout(barmode="relative", bargap=gap, uirevision="waterfall")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=bars,
                     showticklabels=show_ids, tickangle=-60, tickfont=dict(size=10), title=title)
    top = max(25.0, float(np.nanmax(shown))) + (18 if n_over else 8)
    fig.update_yaxes(title="Best change from baseline", range=[-108, top],
                     zeroline=True, zerolinecolor="#adb5bd", ticksuffix="%")
    fig = base_layout(fig, height=440)
    fig.update_layout(margin=dict(l=70, r=46, t=64, b=80 if show_ids else 50), legend=top_legend(440))
    return fig


WITHHELD = "% withheld"


def bor_figure(summary: pd.DataFrame) -> Figure:
    """Horizontal stacked bars of best overall response per group (the row 'all' last), as % of
    every patient in the group (intention to treat), with n in the hover. Input: rows of the
    response-summary export; a suppressed count ("<5") is shown as such and its percentage is
    withheld (no segment)."""
    n = pd.to_numeric(summary["n"], errors="coerce")            # "<5" -> NaN
    if summary.empty or (summary["n"].astype(str) == "0").all():
        return empty_figure(NO_PATIENTS)
    labels = [("All patients" if g == "all" else str(g)) + (" †" if small else "") + f" (n={size})"
              for g, size, small in zip(summary["group"], summary["n"], summary["is_small_group"])]
    fig = Figure()
    for bor in BOR_ORDER:
        count = summary[bor.lower()]
        pct = (100.0 * pd.to_numeric(count, errors="coerce") / n).to_numpy(dtype=float)
        pct_text = [WITHHELD if p != p else f"{p:.1f}%" for p in pct.tolist()]
        fig.add_bar(
            y=labels, x=pct, name=bor, orientation="h", marker_color=BOR_COLOURS[bor],
            text=[f"{p:.0f}%" if p >= 12 else "" for p in pct], textposition="inside", insidetextanchor="middle",
            textangle=0, textfont=dict(size=12),
            customdata=np.column_stack([count.astype(str), summary["n"].astype(str), summary["group"].astype(str),
                                        pct_text]),
            hovertemplate=f"<b>%{{customdata[2]}}</b><br>{bor}: %{{customdata[0]}} of %{{customdata[1]}} "
                          "(%{customdata[3]})<extra></extra>")
    fig.update_layout(barmode="stack", bargap=0.3)
    fig.update_xaxes(title="Patients (%)", range=[0, 100.5], ticksuffix="%", dtick=20)
    fig.update_yaxes(title=None, type="category", autorange="reversed", automargin=True)
    height = max(280, 126 + 34 * len(summary))
    fig = base_layout(fig, height=height)
    fig.update_layout(legend=dict(top_legend(height), traceorder="normal"), margin=dict(l=10, r=20, t=80, b=50))
    return fig


def _factorized_text(values, missing: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(codes, texts): each distinct value of an object column made text once (a few patients,
    visits and BORs repeated over thousands of points), `texts[codes]` the column as text; a
    missing value (code -1) reads as `missing`, the last text."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return codes, np.append(np.asarray(uniques, dtype=object).astype(str), missing)


def _number_column_text(values) -> np.ndarray:
    """A numeric column as text (see _number_text), missing values as ''."""
    values = np.asarray(values, dtype=float)
    present = ~np.isnan(values)
    if present.all():
        return _number_text(values)
    text = np.full(len(values), "", dtype=object)
    text[present] = _number_text(values[present])
    return text.astype(str)


def _max(values: np.ndarray) -> float:
    """The largest value, missing values skipped (NaN if none): Series.max() without the Series."""
    values = values[~np.isnan(values)]
    return float(values.max()) if len(values) else float("nan")


def _object_columns(*columns) -> np.ndarray:
    """customdata whose columns keep their values (text, and numbers sent as numbers) as one 2-D
    object array: what a DataFrame of the columns became (its .to_numpy()), without building the
    DataFrame (measured: ~0.25 ms for each of the swimmer's five, most of the figure's time)."""
    out = np.empty((len(columns[0]), len(columns)), dtype=object)
    for j, column in enumerate(columns):
        out[:, j] = column
    return out


SPIDER_HOVER = ["patient_id", "visit", "pct_change", "response", "bor", "site_id"]


def spider_figure(points: pd.DataFrame, highlight: str | None = None, cap: float = CAP) -> Figure:
    """Percent change from baseline over time, one line per patient coloured by BOR; values above
    `cap` drawn at the cap with a marker. Input: rows of the spider export (patient_id is never
    missing: it is the export's key).

    Column-wise on numpy arrays, every BOR's trace in one pass: the rows are sorted by patient and
    day (the export's rows already are: then nothing is sorted); each drawn row is placed once in
    arrays that hold every trace one after the other, each line followed by a gap (a point with no
    x and y whose customdata holds the patient id only), and each trace is a slice of them. The
    hover text is one unicode array (plotly's JSON encoder makes it a list in one call; as an
    object array it would be walked value by value), each distinct text made once.
    Measured at 600 patients (3,866 points, 500 lines), old and new interleaved: the build ~40% faster
    than when each column's text array was stacked and each trace copied its rows and gaps into its
    own arrays (6.1 -> 3.5 ms; with wire.plain 11.1 -> 7.6 ms; the host's speed varies +-30%)."""
    if points.empty:
        return empty_figure(NO_BAR)
    patient = points["patient_id"].to_numpy(dtype=object)
    day = points["day"].to_numpy()
    codes, ids = pd.factorize(patient)
    # sorted by (patient, day): every patient's rows together in increasing id order (codes are
    # given in order of first appearance), days not decreasing within a patient
    if len(codes) > 1 and not (np.all(codes[1:] >= codes[:-1]) and np.all(ids[1:] > ids[:-1])
                               and np.all((codes[1:] != codes[:-1]) | (day[1:] >= day[:-1]))):
        points = points.sort_values(["patient_id", "day"])
        patient, day = points["patient_id"].to_numpy(dtype=object), points["day"].to_numpy()
        codes, ids = pd.factorize(patient)
    months = day / DAYS_PER_MONTH
    change = points["pct_change"].to_numpy(dtype=float)
    shown = np.minimum(change, cap)             # NaN stays NaN, as Series.clip keeps it
    bors = points["bor"].to_numpy(dtype=object)
    bor_codes, bor_text = _factorized_text(bors)
    # each row's trace: its BOR's place in BOR_ORDER; other BORs (and none) are not drawn
    trace_of = np.array([BOR_ORDER.index(b) if b in BOR_ORDER else len(BOR_ORDER) for b in bor_text[:-1]]
                        + [len(BOR_ORDER)])[bor_codes]
    # the drawn rows in trace order, each trace's rows in their order (a stable sort)
    drawn = np.argsort(trace_of, kind="stable")[:np.count_nonzero(trace_of < len(BOR_ORDER))]
    line, trace = codes[drawn], trace_of[drawn]
    m = len(drawn)
    # a line ends where the patient or the trace changes; row i moves down by the gaps before it
    last = np.flatnonzero(np.append((line[1:] != line[:-1]) | (trace[1:] != trace[:-1]), True)) if m \
        else np.array([], dtype=int)
    rows_at = np.arange(m) + np.searchsorted(last, np.arange(m), side="left")
    gaps_at = last + np.arange(1, len(last) + 1)
    size = m + len(last)
    xs, ys = np.full(size, np.nan), np.full(size, np.nan)
    xs[rows_at], ys[rows_at] = months[drawn], shown[drawn]
    # the hover text, columns in SPIDER_HOVER order, as one take from the texts of every column
    # (each distinct text made once; the numbers made text from every row, as before: the writer
    # _number_text picks depends on all of them): `pick` holds, for every cell of the drawn rows
    # and gaps, the place of its text. One take instead of filling a blank array column by column
    # (measured: 0.3 vs 0.8 ms at 600 patients).
    visit_codes, visit_text = _factorized_text(points["visit"].to_numpy())
    # the baseline scan has no recorded response
    response_codes, response_text = _factorized_text(_response_text(points["response"].to_numpy(),
                                                                     points["visit"].to_numpy()))
    site_codes, site_text = _factorized_text(points["site_id"].to_numpy())
    texts = [np.append(np.asarray(ids, dtype=object).astype(str), ""), visit_text,
             _number_column_text(change), response_text, bor_text, site_text, np.array([""])]
    at = np.cumsum([0] + [len(t) for t in texts])          # where each column's texts start
    blank = at[-2]                                          # the text of a gap's empty cells
    pick = np.full((size, len(SPIDER_HOVER)), blank)
    pick[rows_at] = np.column_stack([at[0] + line % len(texts[0]), at[1] + visit_codes[drawn] % len(visit_text),
                                     at[2] + drawn, at[3] + response_codes[drawn] % len(response_text),
                                     at[4] + bor_codes[drawn] % len(bor_text),
                                     at[5] + site_codes[drawn] % len(site_text)])
    pick[gaps_at, SPIDER_HOVER.index("patient_id")] = at[0] + line[last] % len(texts[0])
    custom = np.concatenate(texts)[pick]
    fig = Figure()
    hit = np.flatnonzero(ids == highlight) if highlight is not None else []
    dim = len(hit) > 0
    n_patients = len(ids)
    opacity = 0.2 if dim else (0.8 if n_patients <= 40 else 0.5)
    # trace k: from its first row's place to the gap after its last row
    bounds = np.searchsorted(trace, np.arange(len(BOR_ORDER) + 1))
    for k, bor in enumerate(BOR_ORDER):
        first, end = bounds[k], bounds[k + 1]
        if first == end:
            continue
        a, b = rows_at[first], rows_at[end - 1] + 2
        fig.add_scatter(
            x=xs[a:b], y=ys[a:b], customdata=custom[a:b], mode="lines+markers" if n_patients <= 100 else "lines",
            name=bor, line=dict(color=BOR_COLOURS[bor], width=1.3), marker=dict(size=4, color=BOR_COLOURS[bor]),
            opacity=opacity, connectgaps=False,
            hovertemplate="<b>%{customdata[0]}</b> (BOR %{customdata[4]}, site %{customdata[5]})<br>"
                          "%{customdata[1]} at %{x:.1f} months: %{customdata[2]:+.1f}%<br>"
                          "recorded %{customdata[3]}<extra></extra>")
    visit = points["visit"].to_numpy()
    over = np.flatnonzero(change > cap)
    if len(over):
        fig.add_scatter(
            x=months[over], y=[cap] * len(over), mode="markers", name=f"> +{cap:.0f}%", showlegend=False,
            marker=dict(symbol="triangle-up", size=8, color="#212529"), opacity=0.35 if dim else 0.8,
            customdata=_object_columns(patient[over], visit[over], change[over]),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}: %{customdata[2]:+.1f}%<extra></extra>")
    if dim:
        h = np.flatnonzero(codes == hit[0])
        response = _response_text(points["response"].to_numpy()[h], points["visit"].to_numpy()[h])
        fig.add_scatter(
            x=months[h], y=shown[h], mode="lines+markers+text", name=highlight, showlegend=False,
            line=dict(color=HIGHLIGHT, width=3.5), marker=dict(size=8, color=BOR_COLOURS.get(bors[h[0]]),
                                                              line=dict(color=HIGHLIGHT, width=1.5)),
            text=[""] * (len(h) - 1) + [f"<b>{highlight}</b>"], textposition="middle right",
            customdata=_object_columns(points["patient_id"].to_numpy()[h], visit[h],
                                       points["pct_change"].to_numpy()[h], response, bors[h],
                                       points["site_id"].to_numpy()[h]).tolist(),
            cliponaxis=False,
            hovertemplate="<b>%{customdata[0]}</b> (BOR %{customdata[4]})<br>%{customdata[1]} at %{x:.1f} months: "
                          "%{customdata[2]:+.1f}%<br>recorded %{customdata[3]}<extra></extra>")
    _reference_lines(fig)
    fig.update_xaxes(title="Months since first DEB-TACE", rangemode="tozero", zeroline=False)
    top = max(25.0, _max(shown)) + 8
    fig.update_yaxes(title="Change from baseline", range=[-108, top], ticksuffix="%",
                     zeroline=True, zerolinecolor="#adb5bd")
    fig = base_layout(fig, height=440)
    fig.update_layout(margin=dict(l=70, r=46, t=64, b=50), legend=top_legend(440), uirevision="spider")
    return fig


SWIMMER_MARKS = {
    # event: (legend name, symbol, size, colour)
    "session": ("DEB-TACE session", "line-ns", 11, "#212529"),
    "first_pd": ("First progression", "diamond", 11, "#CC6677"),
    "death": ("Death", "x-thin", 11, "#000000"),
    "last_contact": ("Alive at last contact", "triangle-right", 9, "#6c757d"),
}
LANE_PX = 18


def _session_text(numbers) -> np.ndarray:
    """'session 3' for each session number, 'session <NA>' for a missing one: the text of
    "session " + Series(numbers).astype("Int64").astype(str), without the three Series."""
    numbers = np.asarray(numbers)
    missing = pd.isna(numbers)
    return np.array(["session <NA>" if m else f"session {int(v)}" for v, m in zip(numbers.tolist(), missing.tolist())],
                    dtype=object)


def swimmer_figure(events: pd.DataFrame, lanes: list[str], highlight: str | None = None) -> Figure:
    """One lane per patient (`lanes`, top first) from the first DEB-TACE to death or last contact,
    coloured by BOR, with sessions, scans (coloured by the recorded response), the first PD and
    death marked. Input: rows of the swimmer export."""
    if events.empty or not lanes:
        return empty_figure(NO_PATIENTS)
    # column-wise: each column once as a numpy array, each trace takes its rows (no DataFrame per trace)
    keep = np.flatnonzero(events["patient_id"].isin(lanes).to_numpy())
    col = {c: events[c].to_numpy()[keep] for c in ("patient_id", "site_id", "bclc_stage", "bor", "time_on_study_days",
                                                    "end_status", "event", "day", "visit", "response", "session_number")}
    patient, event = col["patient_id"], col["event"]
    months = col["day"] / DAYS_PER_MONTH
    # a lane's fields from its first mark, lanes in the given order (a lane without marks: KeyError)
    codes, firsts = pd.factorize(patient)
    first_row = np.unique(codes, return_index=True)[1]
    lane_code = pd.Index(firsts).get_indexer(lanes)
    if (lane_code < 0).any():
        raise KeyError(f"lanes without marks: {[p for p, c in zip(lanes, lane_code) if c < 0]}")
    lane_row = first_row[lane_code]
    lane = {c: col[c][lane_row] for c in ("patient_id", "site_id", "bclc_stage", "bor", "time_on_study_days",
                                          "end_status")}
    lane["bclc_stage"] = _recorded(lane["bclc_stage"])
    lane_months = lane["time_on_study_days"] / DAYS_PER_MONTH
    fig = Figure()
    for bor in BOR_ORDER:
        g = np.flatnonzero(lane["bor"] == bor)
        if not len(g):
            continue
        fig.add_bar(
            y=lane["patient_id"][g], x=lane_months[g], base=0, orientation="h", name=f"BOR {bor}",
            marker=dict(color=BOR_COLOURS[bor], line=dict(width=0)), opacity=0.55,
            customdata=_object_columns(*(lane[c][g] for c in ("patient_id", "site_id", "bclc_stage", "bor",
                                                               "time_on_study_days", "end_status"))),
            hovertemplate="<b>%{customdata[0]}</b> · site %{customdata[1]} · BCLC %{customdata[2]}<br>"
                          "best response %{customdata[3]}<br>%{customdata[4]} days on study (%{x:.1f} months), "
                          "%{customdata[5]}<extra></extra>")
    scans = np.flatnonzero(event == "scan")
    if len(scans):
        fig.add_scatter(
            y=patient[scans], x=months[scans], mode="markers", name="Scan (colour = response)",
            marker=dict(symbol="circle", size=8, color=[BOR_COLOURS.get(r, "#888888") for r in col["response"][scans]],
                        line=dict(color="#212529", width=1)),
            customdata=_object_columns(col["patient_id"][scans], col["visit"][scans],
                                       _response_text(col["response"][scans], col["visit"][scans]), col["day"][scans]),
            hovertemplate="<b>%{customdata[0]}</b><br>scan %{customdata[1]} (day %{customdata[3]}): "
                          "%{customdata[2]}<extra></extra>")
    for kind, (name, symbol, size, colour) in SWIMMER_MARKS.items():
        g = np.flatnonzero(event == kind)
        if not len(g):
            continue
        detail = {"session": lambda: _session_text(col["session_number"][g]),
                  "first_pd": lambda: np.full(len(g), "first progression (PD)", dtype=object),
                  "death": lambda: np.full(len(g), "death", dtype=object),
                  "last_contact": lambda: col["end_status"][g]}[kind]()
        fig.add_scatter(
            y=patient[g], x=months[g], mode="markers", name=name,
            marker=dict(symbol=symbol, size=size, color=colour, line=dict(color=colour, width=2)),
            customdata=np.column_stack([patient[g], detail, col["day"][g]]),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}, day %{customdata[2]}<extra></extra>")
    ticktext = [f"<b>▶ {p}</b>" if p == highlight else p for p in lanes]
    if highlight in lanes:
        i = lanes.index(highlight)
        fig.add_shape(type="rect", xref="paper", x0=0, x1=1, y0=i - 0.5, y1=i + 0.5, layer="below",
                      fillcolor="rgba(255, 193, 7, 0.35)", line=dict(color=HIGHLIGHT, width=1.5))
    right = 1.04 * max(_max(lane_months), _max(months), 1.0)
    # the time axis at the top as well: a long page of lanes is read from the top
    fig.add_scatter(x=[0, right], y=[lanes[0], lanes[0]], xaxis="x2", mode="markers", marker=dict(opacity=0),
                    showlegend=False, hoverinfo="skip")
    fig.update_layout(barmode="overlay", bargap=0.35, uirevision="swimmer",
                      xaxis2=dict(overlaying="x", side="top", matches="x", showgrid=False, ticks="outside"))
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=lanes, range=[len(lanes) - 0.5, -0.5],
                     tickmode="array", tickvals=lanes, ticktext=ticktext, tickfont=dict(size=11), title=None)
    fig.update_layout(xaxis=dict(title="Months since first DEB-TACE", range=[0, right], showgrid=True))
    height = max(300, 170 + LANE_PX * len(lanes))
    fig = base_layout(fig, height=height)
    fig.update_layout(margin=dict(l=100, r=20, t=100, b=50), legend=top_legend(height, below_modebar=False))
    return fig
