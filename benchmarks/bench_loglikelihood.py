"""Multiple-choice log-likelihoods: comptrust's engine against lm-evaluation-harness's HF backend.

    python benchmarks/bench_loglikelihood.py --lm-eval-python /path/to/venv/bin/python [--dtype fp32]

The requests: five-shot multiple choice built from the shipped benign-utility questions (per
subject, its dev questions are the shots, every other question is asked), one request per
option (" A" .. " D"), as MMLU is scored by log-likelihood. Both engines get the same model
(the embedded SmolLM2-135M, dequantized), dtype, and (context, continuation) strings.

- comptrust: `HFBackend.loglikelihood` (length-sorted batches under a token budget; a prefix
  shared by several requests, here the subject's five shots, is computed once per batch).
- lm-eval: `lm_eval.models.huggingface.HFLM(...).loglikelihood`, in its own interpreter
  (`--lm-eval-python`, a virtualenv with `lm_eval[hf]` next to the same torch), batch size
  `--lm-eval-batch-size` (its own length-sorted batches; it also scores one-token continuations
  of one context in a single forward pass).

Prints both times (model loading excluded), the speed-up, and the largest difference between
the two engines' log-likelihoods (fp32: must be below 1e-4) and greedy flags.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LETTERS = "ABCD"

LM_EVAL_CHILD = r"""
import json, sys, time
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
job = json.load(open(sys.argv[1]))
torch.set_num_threads(job["threads"])
lm = HFLM(pretrained=job["model_dir"], dtype=job["dtype"], batch_size=job["batch_size"], device="cpu",
          add_bos_token=job["add_bos"])
instances = [Instance(request_type="loglikelihood", doc={}, arguments=(c, o), idx=i)
             for i, (c, o) in enumerate(job["pairs"])]
start = time.perf_counter()
values = lm.loglikelihood(instances, disable_tqdm=True)
seconds = time.perf_counter() - start
json.dump({"seconds": seconds, "values": [[float(v[0]), bool(v[1])] for v in values]}, open(sys.argv[2], "w"))
"""


def build_pairs() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (ROOT / "fixtures/benign_utility/questions.jsonl").read_text().splitlines()]

    def block(row: dict, answer: bool) -> str:
        options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, row["choices"]))
        return f"{row['question']}{options}\nAnswer:" + (f" {row['answer']}\n\n" if answer else "")

    pairs = []
    subjects = sorted({r["subject"] for r in rows})
    for subject in subjects:
        shots = [r for r in rows if r["subject"] == subject and r["split"] == "dev"][:5]
        asked = [r for r in rows if r["subject"] == subject and r["split"] != "dev"]
        head = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        preamble = head + "".join(block(r, True) for r in shots)
        for row in asked:
            pairs += [(preamble + block(row, False), f" {letter}") for letter in LETTERS]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-eval-python", required=True, help="an interpreter with lm_eval[hf] installed")
    parser.add_argument("--lm-eval-batch-size", type=int, default=16)
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument(
        "--cache", default=os.environ.get("COMPTRUST_CACHE_DIR", str(Path.home() / ".cache/comptrust")),
    )
    args = parser.parse_args()

    import torch

    from comptrust_plugin.engine.hf import HFBackend
    from comptrust_plugin.models.loading import load_model, materialize_embedded
    from comptrust_plugin.models.registry import resolve_model

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    entry = resolve_model("smollm2-135m")
    cache = Path(args.cache).expanduser()
    model_dir = materialize_embedded(entry, cache)
    loaded = load_model(entry, cache, torch.device("cpu"), dtype)
    pairs = build_pairs()
    contexts = {c for c, _ in pairs}
    print(f"# embedded smollm2-135m, {args.dtype}, CPU x{os.cpu_count()}, {len(pairs)} requests "
          f"({len(contexts)} five-shot questions x 4 options), load avg {os.getloadavg()[0]:.1f}")

    backend = HFBackend(loaded)
    ours: dict[int, tuple[float, bool]] = {}
    start = time.perf_counter()
    backend.loglikelihood(pairs, lambda i, v: ours.__setitem__(i, v))
    our_seconds = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as scratch:
        job, result = Path(scratch) / "job.json", Path(scratch) / "result.json"
        job.write_text(json.dumps({
            "model_dir": str(model_dir), "dtype": {"fp32": "float32", "bf16": "bfloat16"}[args.dtype],
            "batch_size": args.lm_eval_batch_size, "pairs": pairs, "threads": torch.get_num_threads(),
            "add_bos": bool(loaded.tokenizer("x", add_special_tokens=True)["input_ids"][0]
                            == loaded.tokenizer.bos_token_id),
        }))
        subprocess.run([args.lm_eval_python, "-c", LM_EVAL_CHILD, str(job), str(result)], check=True, cwd=scratch)
        theirs = json.loads(result.read_text())

    diffs = [abs(ours[i][0] - theirs["values"][i][0]) for i in range(len(pairs))]
    greedy_differs = sum(ours[i][1] != theirs["values"][i][1] for i in range(len(pairs)))
    picks_differ = sum(
        max(range(4), key=lambda k: ours[q + k][0]) != max(range(4), key=lambda k: theirs["values"][q + k][0])
        for q in range(0, len(pairs), 4)
    )
    print(f"  comptrust engine   {our_seconds:7.2f} s")
    print(f"  lm-eval HFLM (batch {args.lm_eval_batch_size})  {theirs['seconds']:7.2f} s")
    print(f"  speed-up {theirs['seconds'] / our_seconds:.2f}x; largest log-likelihood difference {max(diffs):.2e}; "
          f"greedy flags differing {greedy_differs}/{len(pairs)}; chosen options differing {picks_differ}/"
          f"{len(pairs) // 4}")


if __name__ == "__main__":
    main()
