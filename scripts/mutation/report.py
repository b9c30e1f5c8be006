"""Markdown tables of the saved reports, before next to after (for docs/mutation-testing.md).

    python -m scripts.mutation.report [--before-label before] [--after-label after]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent


def _rate(row: dict | None) -> str:
    if not row or row.get("kill_rate") is None:
        return "-"
    return f"{100 * row['kill_rate']:.1f}%"


def _load(name: str) -> dict | None:
    path = OUT / name
    return json.loads(path.read_text()) if path.exists() else None


def sql_table(before: dict, after: dict | None) -> str:
    lines = ["| view | mutants | killed before | survived before | kill rate before | killed after | survived after | kill rate after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    b, a = before["summary"], (after or {}).get("summary", {"views": {}, "total": {}})
    for view in [*sorted(b["views"]), "TOTAL"]:
        rb = b["total"] if view == "TOTAL" else b["views"][view]
        ra = a["total"] if view == "TOTAL" else a["views"].get(view)
        n = rb["mutants"] - rb["invalid"]
        name = f"**{view}**" if view == "TOTAL" else f"`{view}`"
        lines.append(f"| {name} | {n} | {rb['killed'] + rb['timeout']} | {rb['survived']} | {_rate(rb)} | "
                     f"{(ra['killed'] + ra['timeout']) if ra else '-'} | {ra['survived'] if ra else '-'} | {_rate(ra)} |")
    return "\n".join(lines)


def python_table(before: dict, after: dict | None) -> str:
    lines = ["| module | sampled | tested | killed before | not killed before | kill rate before | killed after | not killed after | kill rate after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for module in [*sorted(before["modules"]), "TOTAL"]:
        rb = before["total"] if module == "TOTAL" else before["modules"][module]
        ra = (after or {}).get("total") if module == "TOTAL" else (after or {}).get("modules", {}).get(module)
        tested = rb["mutants"] - rb.get("not_checked", 0)
        nk = lambda r: r.get("survived", 0) + r.get("no_tests", 0) + r.get("suspicious", 0)  # noqa: E731
        name = f"**{module}**" if module == "TOTAL" else f"`{module}`"
        lines.append(f"| {name} | {rb['mutants']} | {tested} | {rb.get('killed', 0) + rb.get('timeout', 0)} | {nk(rb)} | "
                     f"{_rate(rb)} | {(ra.get('killed', 0) + ra.get('timeout', 0)) if ra else '-'} | "
                     f"{nk(ra) if ra else '-'} | {_rate(ra)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.mutation.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--before-label", default="before")
    ap.add_argument("--after-label", default="after")
    args = ap.parse_args(argv)
    sb, sa = _load(f"results-sql-{args.before_label}.json"), _load(f"results-sql-{args.after_label}.json")
    pb, pa = _load(f"results-mutmut-{args.before_label}.json"), _load(f"results-mutmut-{args.after_label}.json")
    if sb:
        print(sql_table(sb, sa))
        print()
    if pb:
        print(python_table(pb, pa))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
