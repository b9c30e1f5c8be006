"""Complementary withholding: a count shown as "<5" must not be recoverable by subtraction.

Where an export shows a total next to its parts (patients with any grade and per worst grade; all
patients and each group), a single "<5" among them is the total minus the others. For every such sum
with exactly one member not shown, one more member is withheld (None: "–" on screen, empty in a CSV),
until each sum has none or at least two; members public elsewhere (the 'n' of the filter) are never
withheld, only relied on.
"""
from __future__ import annotations

import math

ROOMY = 7           # a withheld member of 7 or more leaves the "<5" beside it at least two possible values


def unknown(value) -> bool:
    """Not shown: "<5", withheld (None) or missing."""
    return value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value))


def to_withhold(values: dict, sums, public=()) -> set:
    """The keys of `values` (key -> count, "<5" or None) to withhold so that no sum (total key, part
    keys) has exactly one member not shown. Greedy: the smallest shown member of 7 or more, else the
    smallest shown non-zero member (a withheld count is known to be 0 or at least 5, so a small one
    would pin the "<5" beside it); keys in `public` are shown elsewhere and never withheld."""
    hidden: set = set()

    def unseen(key) -> bool:
        return key in hidden or unknown(values[key])

    changed = True
    while changed:
        changed = False
        for total, parts in sums:
            members = [total, *parts]
            if sum(map(unseen, members)) != 1:
                continue
            shown = [k for k in members if not unseen(k) and k not in public and values[k] > 0]
            roomy = [k for k in shown if values[k] >= ROOMY]
            pick = min(roomy or shown, key=lambda k: values[k], default=None)
            if pick is not None:
                hidden.add(pick)
                changed = True
    return hidden
