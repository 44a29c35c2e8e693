"""`compare --junit`: hostile axis values come back from the XML as they were, escaped, not breaking it."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pandas as pd

from trtbench.commands.compare import junit
from trtbench.compare import SLOWER, Comparison


def test_markup_and_control_characters_in_axis_values_stay_text():
    joined = pd.DataFrame([{"precision": 'fp8"<&>\x1b]', "isl": 128, "osl": 128, "status": "ok", "verdict": SLOWER,
                            "change_pct": -6.5, "change_low_pct": -8.25, "change_high_pct": -4.75, "q": 0.001},
                           {"precision": "fp16", "isl": 128, "osl": 128, "status": "A: timeout", "verdict": math.nan,
                            "change_pct": math.nan, "change_low_pct": math.nan, "change_high_pct": math.nan,
                            "q": math.nan}])
    empty = pd.DataFrame()
    cmp = Comparison(["precision", "isl", "osl"], joined, empty, empty, None, empty, 0, threshold=0.02)
    suite = ET.fromstring(junit(cmp, "b vs a <&>")).find("testsuite")
    assert suite is not None and suite.get("name") == "b vs a <&>"
    slow, failed = suite.findall("testcase")
    assert slow.get("classname") == 'precision=fp8"<&>\\u001b]' and slow.get("name") == "ISL 128 / OSL 128"
    failure = slow.find("failure")
    assert failure is not None and failure.get("message") == ("slower by 6.50% (95% CI -8.25% to -4.75%, q 0.001), "
                                                              "beyond the threshold of 2.0%")
    skipped = failed.find("skipped")
    assert skipped is not None and skipped.get("message") == "not compared (A: timeout)"
