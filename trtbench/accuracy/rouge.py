"""ROUGE of summaries against references, as MLPerf's Llama-3.1-8B evaluation computes it: Google's
`rouge-score` with Porter stemming, the per-example F-measures averaged and x 100, and for rougeLsum each
text split into one sentence per line first.

MLPerf splits sentences with nltk's punkt model, whose data cannot be downloaded on these machines. We split
after `.`, `!` or `?` (and closing quotes or brackets) followed by whitespace, keeping line breaks already in
the text. That differs from punkt on abbreviations ("U.S. officials", "Dr. Smith") and decimal-free initials,
where it splits one sentence in two; this changes rougeLsum only (rouge1/2/L do not see sentences), typically
by a few tenths of a point on news summaries.

Each mean comes with a 95% percentile-bootstrap interval of the per-example F-measures: a few hundred
generations estimate the full set's score only to a point or two, more than the 1% margin (0.39 points of
rouge1) of MLPerf's targets. numpy with a fixed seed rather than scipy.stats.bootstrap, whose seeding argument
changed across the scipy releases we accept (`random_state`, then `rng`): a file gives the same interval
everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trtbench.errors import TrtbenchError

METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
MAX_BYTES = 512 * 2**20  # a generations file larger than this is refused, not read
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")  # the space after an end (and its quote)
CONFIDENCE = 0.95
RESAMPLES = 10_000  # about scipy.stats.bootstrap's 9,999: another seed moves the ends by ~1% of the width
SEED = 0
_BATCH = 2**20  # resampled indices held at once (x 8 bytes)


@dataclass(frozen=True)
class Pair:
    prediction: str
    reference: str


def sentences(text: str) -> str:
    """`text` with one sentence per line (rougeLsum's input)."""
    lines = (line.strip() for line in text.strip().splitlines())
    return "\n".join(s.strip() for line in lines if line for s in _SENTENCE_END.split(line) if s.strip())


@dataclass(frozen=True)
class Estimate:
    """A mean F-measure x 100 and its bootstrap interval."""

    score: float
    low: float
    high: float


def score(pairs: Iterable[Pair]) -> dict[str, np.ndarray]:
    """Each pair's ROUGE F-measure x 100, per metric: kept apart so that the interval can be computed."""
    from rouge_score import rouge_scorer  # imported on use: it pulls in nltk

    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    got = [scorer.score(sentences(pair.reference), sentences(pair.prediction)) for pair in pairs]
    if not got:
        raise TrtbenchError("no generations to score")
    return {m: np.array([100 * g[m].fmeasure for g in got]) for m in METRICS}


def bootstrap(columns: Sequence[np.ndarray]) -> list[tuple[float, float]]:
    """The CONFIDENCE percentile interval of the mean of each column (equal lengths): the examples resampled with
    replacement RESAMPLES times, the same resamples for every column, seeded so that the same values give the
    same interval. One example gives a zero-width interval, which says nothing."""
    n = len(columns[0])
    rng = np.random.default_rng(SEED)
    means = np.empty((len(columns), RESAMPLES))
    step = max(1, _BATCH // n)
    for start in range(0, RESAMPLES, step):
        stop = min(start + step, RESAMPLES)
        picks = rng.integers(0, n, (stop - start, n))
        for i, column in enumerate(columns):  # a gather per column: about twice as fast as one over all
            means[i, start:stop] = column[picks].mean(axis=1)
    tail = 100 * (1 - CONFIDENCE) / 2
    return [(float(low), float(high)) for low, high in np.percentile(means, [tail, 100 - tail], axis=1).T]


def estimates(per_example: dict[str, np.ndarray]) -> dict[str, Estimate]:
    """Each metric's mean and bootstrap interval."""
    intervals = bootstrap(list(per_example.values()))
    return {m: Estimate(float(v.mean()), *ci) for (m, v), ci in zip(per_example.items(), intervals, strict=True)}


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
