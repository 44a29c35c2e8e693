"""ROUGE of summaries against references, as MLPerf's Llama-3.1-8B evaluation computes it: Google's
`rouge-score` with Porter stemming, the per-example F-measures averaged and x 100, and for rougeLsum each
text split into one sentence per line first.

MLPerf splits sentences with nltk's punkt model, whose data cannot be downloaded on these machines. We split
after `.`, `!` or `?` (and closing quotes or brackets) followed by whitespace, keeping line breaks already in
the text. That differs from punkt on abbreviations ("U.S. officials", "Dr. Smith") and decimal-free initials,
where it splits one sentence in two; this changes rougeLsum only (rouge1/2/L do not see sentences), typically
by a few tenths of a point on news summaries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trtbench.errors import TrtbenchError

METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
MAX_BYTES = 512 * 2**20  # a generations file larger than this is refused, not read
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")  # the space after an end (and its quote)


@dataclass(frozen=True)
class Pair:
    prediction: str
    reference: str


def sentences(text: str) -> str:
    """`text` with one sentence per line (rougeLsum's input)."""
    lines = (line.strip() for line in text.strip().splitlines())
    return "\n".join(s.strip() for line in lines if line for s in _SENTENCE_END.split(line) if s.strip())


def score(pairs: Iterable[Pair]) -> tuple[dict[str, float], int]:
    """Mean ROUGE F-measure x 100 per metric, and the number of pairs."""
    from rouge_score import rouge_scorer  # imported on use: it pulls in nltk

    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    totals, n = dict.fromkeys(METRICS, 0.0), 0
    for pair in pairs:
        got = scorer.score(sentences(pair.reference), sentences(pair.prediction))
        for metric in METRICS:
            totals[metric] += got[metric].fmeasure
        n += 1
    if n == 0:
        raise TrtbenchError("no generations to score")
    return {m: 100 * t / n for m, t in totals.items()}, n


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of a JSONL file (`prediction` and `reference` strings per line), or a one-line error naming
    the first bad line."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TrtbenchError(f"{path} is larger than {MAX_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrtbenchError(f"generations file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrtbenchError(f"cannot read {path}: {exc}") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise TrtbenchError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("prediction", "reference")):
            raise TrtbenchError(f"{path}:{number}: needs \"prediction\" and \"reference\" strings")
        pairs.append(Pair(item["prediction"], item["reference"]))
    if not pairs:
        raise TrtbenchError(f"{path} holds no generations")
    return pairs
