"""`trtbench accuracy score`: ROUGE as MLPerf computes it, checked on pairs scored by hand, and the verdict
against MLPerf's Llama-3.1-8B CNN/DailyMail targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trtbench.accuracy.rouge import Pair, score, sentences
from trtbench.accuracy.targets import TARGETS


def _write(tmp_path: Path, pairs: list[tuple[str, str]]) -> Path:
    path = tmp_path / "generations.jsonl"
    path.write_text("".join(json.dumps({"prediction": p, "reference": r}) + "\n" for p, r in pairs))
    return path


def test_rouge_by_hand():
    # "the cat sat" vs "the cat ran": 2 of 3 unigrams (F 2/3), 1 of 2 bigrams (F 1/2), LCS "the cat" (F 2/3).
    # "Dogs running. It rained." vs "dog runs. it rained.": Porter stems and lower case make them equal (F 1).
    scores, n = score([Pair("the cat sat", "the cat ran"), Pair("Dogs running. It rained.", "dog runs. it rained.")])
    assert n == 2
    assert scores["rouge1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert scores["rouge2"] == pytest.approx(100 * (1 / 2 + 1) / 2)
    assert scores["rougeL"] == pytest.approx(100 * (2 / 3 + 1) / 2)


def test_rougelsum_sees_sentences_and_rougel_does_not():
    # "a b. c d." vs "c d. a b.": one LCS over the whole text is "a b" or "c d" (F 1/2); per sentence, each
    # reference sentence finds itself in the prediction (union LCS 4 of 4 tokens: F 1).
    scores, _ = score([Pair("a b. c d.", "c d. a b.")])
    assert scores["rougeL"] == pytest.approx(50.0) and scores["rougeLsum"] == pytest.approx(100.0)
    assert sentences('He said "no." Then he left!  Really?') == 'He said "no."\nThen he left!\nReally?'


def test_the_mlperf_thresholds_are_99_percent_of_the_reference():
    passed, needed = TARGETS["mlperf-llama3.1-8b"].verdict(
        {"rouge1": 38.40, "rouge2": 15.75, "rougeL": 24.26, "rougeLsum": 35.44})
    assert needed["rouge1"] == pytest.approx(0.99 * 38.7792) and passed
    assert not TARGETS["mlperf-llama3.1-8b-99.9"].verdict(
        {"rouge1": 38.40, "rouge2": 15.75, "rougeL": 24.26, "rougeLsum": 35.44})[0]


def test_the_command_passes_fails_and_writes_json(cli, tmp_path):
    good = _write(tmp_path, [("the cat sat on the mat.", "the cat sat on the mat.")] * 3)
    result = cli("accuracy", "score", str(good), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["passed"] is True and data["generations"] == 3 and data["scores"]["rouge2"] == pytest.approx(100)
    bad = _write(tmp_path, [("completely unrelated words here", "the cat sat on the mat.")])
    failed = cli("accuracy", "score", str(bad))
    assert failed.code == 1 and "FAIL" in failed.err


@pytest.mark.parametrize(("content", "message"), [
    ("not json\n", "generations.jsonl:1: not a JSON object"),
    ('{"prediction": "x"}\n', 'generations.jsonl:1: needs "prediction" and "reference" strings'),
    ("\n\n", "holds no generations"),
])
def test_bad_generations_are_one_line_errors(cli, tmp_path, content, message):
    path = tmp_path / "generations.jsonl"
    path.write_text(content)
    result = cli("accuracy", "score", str(path))
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
