"""Complementary withholding: a count shown as "<5" must not be recoverable by subtraction.

Where an export shows a total next to its parts (patients with any grade and per worst grade; all
patients and each group), a single "<5" among them is the total minus the others. For every such sum
with exactly one member not shown, one more member is withheld (None: "–" on screen, empty in a CSV),
until each sum has none or at least two; members public elsewhere (the 'n' of the filter) are never
withheld, only relied on.
"""
from __future__ import annotations

import math

ROOMY = 6           # a withheld member of 6 or more leaves the "<5" beside it at least two possible values


def unknown(value) -> bool:
    """Not shown: "<5", withheld (None) or missing."""
    return value is None or isinstance(value, str) or (isinstance(value, float) and math.isnan(value))


def to_withhold(values: dict, sums, public=()) -> set:
    """The keys of `values` (key -> count, "<5" or None) to withhold so that no sum (total key, part
    keys) has exactly one member not shown. Greedy, one member at a time, from the sums at risk (one
    member not shown): a member of 6 or more (a withheld count is known to be 0 or at least 5, so a
    smaller one could pin the "<5" beside it), in the most sums at risk, a part before a total, the
    smallest; keys in `public` are shown elsewhere and never withheld."""
    hidden: set = set()
    sums = [(total, [total, *parts]) for total, parts in sums]

    def unseen(key) -> bool:
        return key in hidden or unknown(values[key])

    while True:
        at_risk = [(total, members) for total, members in sums if sum(map(unseen, members)) == 1]
        candidates = {k for _, members in at_risk for k in members
                      if not unseen(k) and k not in public and values[k] > 0}
        if not candidates:
            return hidden
        risk = {k: sum(k in members for _, members in at_risk) for k in candidates}
        totals = {total for total, _ in at_risk}
        hidden.add(min(candidates, key=lambda k: (values[k] < ROOMY, -risk[k], k in totals, values[k], str(k))))
