"""How far the simulator is from NVIDIA's published throughput on rows it was never fitted on: the perf-overview
table of TensorRT-LLM's developer guide (docs/source/developer-guide/perf-overview.md @03e27c7d, release 1.1,
output tok/s per GPU), its columns that are not in the calibration folder: other mixtures (Qwen3-30B-A3B, gpt-oss,
DeepSeek-R1), other GPUs (GB200, H100 at DEP8) and Llama-3.3-70B. These rows judge the model; they are kept out of
`trtbench/data` so that no fit ever sees them. Request counts are the table's; 1000/1000 takes 1024/1024's.

    .venv/bin/python benchmarks/judge_unseen.py
"""

from __future__ import annotations

import pandas as pd

from trtbench.sim.table import predict_frame, score, with_groups

SEQUENCES = ["1000/1000", "1024/1024", "1024/8192", "1024/32768", "8192/1024", "32768/1024"]
REQUESTS = {"1000/1000": 3000, "1024/1024": 3000, "1024/8192": 1500, "1024/32768": 1000, "8192/1024": 1500,
            "32768/1024": 1000}
# (model, GPU, precision, TP, attention DP, KV dtype): output tok/s per GPU by SEQUENCES (None: a blank cell).
# GPT-OSS and DeepSeek-R1 set kv_cache_config dtype fp8 (Hopper: auto); the others take the checkpoint's.
PUBLISHED: dict[tuple[str, str, str, int, bool, str | None], list[int | None]] = {
    ("Qwen3-30B-A3B", "B200", "FP4", 1, False, None): [26971, 26611, 13497, 4494, 5735, 1265],
    ("Qwen3-30B-A3B", "GB200", "FP4", 1, False, None): [22856, 22201, 14272, 4925, 6201, 1380],
    ("Llama-3.3-70B", "B200", "FP4", 1, False, None): [6920, 6842, 3242, None, 1362, 274],
    ("Llama-3.3-70B", "GB200", "FP4", 1, False, None): [7769, 7751, 3805, None, 1491, 302],
    ("Llama-3.3-70B", "H200", "FP8", 2, False, None): [2587, 2582, 2009, None, 537, 120],
    ("Llama-3.3-70B", "H100 SXM", "FP8", 2, False, None): [2209, None, None, None, 398, None],
    ("Qwen3-235B-A22B", "GB200", "FP4", 4, True, None): [6172, 5862, 3423, None, 1464, 333],
    ("Qwen3-235B-A22B", "H100 SXM", "FP8", 8, True, None): [1932, 1935, 873, None, None, None],
    ("gpt-oss-20b", "B200", "MXFP4", 1, False, "fp8"): [53812, 53491, 34702, 14589, 11904, 2645],
    ("gpt-oss-20b", "GB200", "MXFP4", 1, False, "fp8"): [55823, 56528, 38100, 16463, 12941, 2905],
    ("gpt-oss-20b", "H200", "MXFP4", 1, False, "auto"): [13858, 13890, 12743, None, 4015, 915],
    ("gpt-oss-20b", "H100 SXM", "MXFP4", 1, False, "auto"): [11557, 11403, 8617, None, 3366, 785],
    ("gpt-oss-120b", "GB200", "MXFP4", 1, False, "fp8"): [27198, 26609, 14800, 5556, 6835, 1645],
    ("gpt-oss-120b", "H200", "MXFP4", 1, False, "auto"): [6868, 6798, 3543, None, 1828, 519],
    ("DeepSeek-R1", "B200", "FP4", 4, True, "fp8"): [6463, 6430, 3862, 1451, 1168, None],
    ("DeepSeek-R1", "GB200", "FP4", 4, True, "fp8"): [6939, 6924, 4379, 1465, 1192, None],
    ("DeepSeek-R1", "H200", "FP8", 8, True, "fp8"): [1627, 1620, 1218, 438, None, None],
}


def rows() -> pd.DataFrame:
    out = []
    for (model, gpu, precision, tp, dep, kv), values in PUBLISHED.items():
        for seq, per_gpu in zip(SEQUENCES, values, strict=True):
            if per_gpu is None:
                continue
            isl, osl = map(int, seq.split("/"))
            out.append({"gpu": gpu, "model": model, "precision": precision, "tp": tp, "ep": tp if dep else None,
                        "attention_dp": "yes" if dep else "", "kv_cache_dtype": kv, "isl": isl, "osl": osl,
                        "num_requests": REQUESTS[seq], "output_tok_per_s": per_gpu * tp, "kv_fraction": 0.95,
                        "release": "1.1"})
    return pd.DataFrame(out)


def main() -> None:
    predicted = predict_frame(rows(), fraction=0.95)
    scored, mape, _ = score(predicted[predicted["pred_status"] == "ok"])
    dep = scored["attention_dp"] == "yes"
    label = scored["model"] + " " + scored["gpu"] + " " + with_groups(scored)["parallelism"]
    table = scored.groupby(label, sort=False)["error_pct"].agg(rows="count", mape=lambda e: e.abs().mean(),
                                                                mean="mean")
    print(table.round(1).to_string())
    split = {name: scored.loc[rows_of, "error_pct"].abs().mean() for name, rows_of in (("TP", ~dep), ("DEP", dep))}
    print(f"{len(scored)} rows: MAPE {mape:.1f}%; without attention DP {split['TP']:.1f}%, attention DP "
          f"{split['DEP']:.1f}% (simulated vs published, never fitted)")
    failed = predicted[predicted["pred_status"] != "ok"]
    if len(failed):
        print(failed[["model", "gpu", "isl", "osl", "pred_status", "pred_cause"]].to_string())


if __name__ == "__main__":
    main()
