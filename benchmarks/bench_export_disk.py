"""Disk per compressed config: the dense copy the artifact store used to keep vs the packed checkpoint.

    python benchmarks/bench_export_disk.py [--dtype bfloat16] [--specs rtn-4-g64,rtn-8-g64,rtn-3-g64,wanda-2:4]

For the embedded model (SmolLM2-135M), each spec is compressed once and written both ways: as the
dense safetensors copy (`save_pretrained` of the compressed model: what a pruned config and a
group size the format cannot take still get) and as the packed compressed-tensors checkpoint
(`compress/export.py`); the two folders' sizes, their ratio, and the time to load each back are
printed side by side. The byte count of the packed format (integers at `bits` per weight, float32
scales and packed zero points per group, everything outside the decoder blocks' Linears at the
model's dtype) is checked against the measured folder, then projected for Llama-2-7B, -13B and
-70B shapes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comptrust_plugin.compress.apply import compress_model  # noqa: E402
from comptrust_plugin.compress.export import quantized_linears, write_checkpoint  # noqa: E402
from comptrust_plugin.models.loading import load_model  # noqa: E402
from comptrust_plugin.models.registry import resolve_model  # noqa: E402
from comptrust_plugin.options import default_cache_dir  # noqa: E402
from comptrust_plugin.spec import parse_spec  # noqa: E402

# (hidden, intermediate, layers, kv heads / heads, vocab, tied embeddings)
SHAPES = {
    "Llama-2-7B": (4096, 11008, 32, 1.0, 32000, False),
    "Llama-2-13B": (5120, 13824, 40, 1.0, 32000, False),
    "Llama-2-70B": (8192, 28672, 80, 0.125, 32000, False),
}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix == ".safetensors")


def packed_bytes(linear: int, rows_x_groups: int, other: int, bits: int, dtype_bytes: int) -> int:
    """Integers packed at `bits`, a float32 scale and a `bits`-wide zero point per (row, group),
    everything else at the model's dtype."""
    return linear * bits // 8 + rows_x_groups * 4 + rows_x_groups * bits // 8 + other * dtype_bytes


def shape_counts(hidden: int, inter: int, layers: int, kv: float, vocab: int, tied: bool) -> tuple[int, int, list[int]]:
    """Linear weights in the decoder blocks, other weights, and each Linear's rows (per block)."""
    kv_rows = int(hidden * kv)
    rows = [hidden, kv_rows, kv_rows, hidden, inter, inter, hidden]  # q k v o gate up down
    cols = [hidden, hidden, hidden, hidden, hidden, hidden, inter]
    linear = layers * sum(r * c for r, c in zip(rows, cols))
    other = vocab * hidden * (1 if tied else 2) + layers * 2 * hidden + hidden
    return linear, other, [r * c for r, c in zip(rows, cols)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--specs", default="rtn-4-g64,rtn-8-g64,rtn-3-g64,wanda-2:4")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    entry = resolve_model("smollm2-135m")
    cache = default_cache_dir()
    threads = torch.get_num_threads()
    print(f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {threads} threads, dtype {args.dtype}")
    print(f"{'spec':12} {'dense copy MB':>14} {'packed MB':>10} {'ratio':>6} {'formula MB':>11} "
          f"{'load dense s':>13} {'load packed s':>14}")
    with tempfile.TemporaryDirectory(prefix="comptrust-disk-") as work:
        for text in args.specs.split(","):
            spec = parse_spec(text)
            loaded = load_model(entry, cache, torch.device("cpu"), dtype)
            stats = compress_model(loaded.model, replace(spec, n_samples=4, seqlen=256), loaded.tokenizer)
            dense_dir, packed_dir = Path(work) / f"dense-{text}", Path(work) / f"packed-{text}"
            loaded.model.save_pretrained(dense_dir, safe_serialization=True)
            write_checkpoint(loaded.model, loaded.tokenizer, spec, stats.grids, packed_dir, {})
            dense, packed = folder_bytes(dense_dir), folder_bytes(packed_dir)
            formula = ""
            if spec.is_quantization:
                linears = quantized_linears(loaded.model)
                linear = sum(m.weight.numel() for m in linears.values())
                groups = sum(m.out_features * -(-m.in_features // spec.group_size) for m in linears.values())
                other = sum(p.numel() for n, p in loaded.model.named_parameters()
                            if n.rsplit(".", 1)[0] not in linears)
                formula = f"{packed_bytes(linear, groups, other, spec.bits, dtype.itemsize) / 1e6:.1f}"
            timings = []
            for folder in (dense_dir, packed_dir):
                start = time.perf_counter()
                load_model(entry, cache, torch.device("cpu"), dtype, weights_dir=folder)
                timings.append(time.perf_counter() - start)
            print(f"{text:12} {dense / 1e6:14.1f} {packed / 1e6:10.1f} {dense / packed:6.2f} {formula:>11} "
                  f"{timings[0]:13.2f} {timings[1]:14.2f}")
            shutil.rmtree(dense_dir)
            shutil.rmtree(packed_dir)
    print("\nprojected (formula above, g128, bf16 elsewhere; GB):")
    print(f"{'model':12} {'dense bf16':>10} {'8-bit':>7} {'4-bit':>7} {'3-bit':>7}")
    for name, shape in SHAPES.items():
        linear, other, _ = shape_counts(*shape)
        groups = linear // 128
        dense = (linear + other) * 2
        sizes = [packed_bytes(linear, groups, other, bits, 2) for bits in (8, 4, 3)]
        print(f"{name:12} {dense / 1e9:10.1f} " + " ".join(f"{s / 1e9:7.1f}" for s in sizes))


if __name__ == "__main__":
    main()
