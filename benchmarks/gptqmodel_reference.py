"""GPTQ by gptqmodel (the reference implementation optimum uses), for bench_compression.py.

Runs under a separate interpreter that has gptqmodel installed (it is not a dependency of
comptrust), e.g. a throwaway venv made with torch pinned:

    python -m venv /tmp/gq && /tmp/gq/bin/pip install -c constraints.txt torch==2.13.0 gptqmodel

    /tmp/gq/bin/python benchmarks/gptqmodel_reference.py JOB.json

JOB.json (written by bench_compression.py): the dense model directory, the calibration windows
and held-out windows as token ids, bits and group size. Prints one JSON line: seconds spent in
`quantize()`, and the perplexity of the quantized model on the held-out windows (float32).
Imports nothing from comptrust.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time


def main() -> None:
    import gptqmodel
    import torch
    from gptqmodel import BACKEND, GPTQModel, QuantizeConfig

    # gptqmodel 7.6.0 sizes its CPU pool at (cores + 1) // 2 workers but asks for a 2-worker
    # model-loader pool inside it, which fails on a 2-core machine ("requests 2 workers but
    # parent 'cpu' only has 1"). Give the CPU pool 2 workers (the pool is built lazily).
    if hasattr(gptqmodel, "_default_cpu_workers"):
        gptqmodel._default_cpu_workers = lambda: 2

    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    config = QuantizeConfig(bits=job["bits"], group_size=job["group_size"], desc_act=False)
    model = GPTQModel.load(job["model_dir"], config, device="cpu", dtype=torch.bfloat16)
    calibration = [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in job["calibration"]]
    start = time.perf_counter()
    model.quantize(calibration, batch_size=1, calibration_sort=None)
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        model.save(out)
        # the pure-torch kernel: the CPU int4 kernel needs in_features divisible by the group
        # size (SmolLM2's 576 is not by 128)
        quantized = GPTQModel.load(out, device="cpu", backend=BACKEND.GPTQ_TORCH)
        total, count = 0.0, 0
        with torch.no_grad():
            for ids in job["heldout"]:
                tensor = torch.tensor([ids])
                logits = quantized.model(input_ids=tensor).logits.float()
                loss = torch.nn.functional.cross_entropy(logits[0, :-1], tensor[0, 1:], reduction="sum")
                total += float(loss)
                count += len(ids) - 1
    print(json.dumps({"seconds": seconds, "ppl": float(torch.exp(torch.tensor(total / count)))}))


if __name__ == "__main__":
    main()
