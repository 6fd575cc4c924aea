"""How calibrated compression grows with model size: 7B, 13B and 70B layer shapes, measured on CPU.

Usage:
    python benchmarks/bench_growth.py [--shapes llama-2-7b,llama-2-13b,llama-2-70b]
        [--methods wanda-50,sparsegpt-50,gptq-4,awq-4] [--layers 1,2] [--ns 4] [--seqlen 512]

Each (shape, depth, method) runs in a fresh child process: a Llama model with the real layer
shapes of that size (hidden size, MLP width, attention and KV heads, Llama-2's 32,000-token
vocabulary) but only 1-4 decoder blocks, random-initialised in float32 (the faster dtype on an
AVX2-only CPU, see bench_dtype.py), compressed by comptrust's own layer-by-layer runner on
`ns` windows of `seqlen` random token ids (the content does not change the work done). The
child reports:

- seconds per block, split into the block's calibration passes (forward passes of the block,
  statistics hooks included: proportional to the calibration tokens) and the rest (the
  method's solve: GPTQ / SparseGPT column sweeps, Wanda's sort, AWQ's searches on a fixed 512
  tokens: independent of the calibration size);
- peak process memory (ru_maxrss), the memory the model itself holds, and the working set
  (peak minus the resident size right after the model was built): what compression adds on
  top of the model. The target is model + one block + activations, never two copies of the
  model: the working set must not grow with depth (compare depths 1 and 2).

From these it projects full depth (32 / 40 / 80 blocks):
- CPU: depth x seconds per block, with the calibration passes scaled to the CPU default of
  16 x 512 tokens; peak = model at full depth + the measured working set.
- One H100 (weights on CPU, one block at a time on the GPU, the GPU default of 128 x 512
  tokens): each part's CPU time x (CPU float32 matrix rate measured in this run / a GPU rate),
  i.e. the GPU is assumed to reach the same fraction of its ceiling as this CPU reaches of its
  own. Two GPU rates bracket the result: 798 TFLOP/s (bf16 matrix product measured on the lent
  H100, .library/device/KINDS.md) and 67 TFLOP/s (the datasheet's plain float32 rate: the
  statistics and solves run in float32). Plus moving each block to the GPU and back at an
  assumed 25 GB/s. GPU memory: the block in bf16 + the measured working set. Not modelled:
  kernel-launch overheads of the column sweeps, host-side Python time, attention's share.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, replace

SHAPES = {  # hidden, MLP width, attention heads, KV heads, full depth (the published configs)
    "llama-2-7b": (4096, 11008, 32, 32, 32),
    "llama-2-13b": (5120, 13824, 40, 40, 40),
    "llama-2-70b": (8192, 28672, 64, 8, 80),
}
VOCAB = 32000
CPU_TOKENS = 16 * 512  # spec.py: CPU_CAL_SAMPLES x DEFAULT_CAL_SEQLEN
GPU_TOKENS = 128 * 512  # spec.py: DEFAULT_CAL_SAMPLES x DEFAULT_CAL_SEQLEN
GPU_RATES = {"bf16 798 TFLOP/s (measured)": 798e12, "fp32 67 TFLOP/s (datasheet)": 67e12}
PCIE_BYTES_PER_S = 25e9


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize()


def cpu_matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """Float32 FLOP/s of a size^3 matrix product on this CPU (best of `repeats`)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(work: object) -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - start


def run_child(job: dict) -> dict:
    """Build the model, compress it block by block, report times and memory (child process)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from comptrust_plugin.compress import runner
    from comptrust_plugin.compress.apply import make_compressor
    from comptrust_plugin.spec import parse_spec

    hidden, mlp, heads, kv_heads, _ = SHAPES[job["shape"]]
    torch.manual_seed(0)
    rss_start = _rss_bytes()
    config = LlamaConfig(
        hidden_size=hidden, intermediate_size=mlp, num_attention_heads=heads, num_key_value_heads=kv_heads,
        num_hidden_layers=job["layers"], vocab_size=VOCAB, max_position_embeddings=4096,
    )
    model = LlamaForCausalLM(config).eval()
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    block_bytes = sum(p.numel() * p.element_size() for p in model.model.layers[0].parameters())
    rss_model = _rss_bytes()
    spec = replace(parse_spec(job["method"]), n_samples=job["ns"], seqlen=job["seqlen"])
    ids = torch.randint(0, VOCAB, (job["ns"], job["seqlen"]), generator=torch.Generator().manual_seed(0))

    passes = [0.0]
    original = runner.BlockStep.forward

    def timed_forward(self: runner.BlockStep, hidden_states: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        try:
            return original(self, hidden_states)
        finally:
            passes[0] += time.perf_counter() - start

    runner.BlockStep.forward = timed_forward  # type: ignore[method-assign]
    marks: list[tuple[float, float]] = []
    begun = time.perf_counter()

    def on_block(index: int, total: int) -> None:
        marks.append((time.perf_counter(), passes[0]))

    stats = runner.run_layerwise(model, ids, make_compressor(spec), on_block=on_block)
    blocks = []
    previous_time, previous_passes = begun, 0.0
    for end, passed in marks:
        blocks.append({"seconds": end - previous_time, "passes": passed - previous_passes})
        previous_time, previous_passes = end, passed
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        **job, "model_bytes": model_bytes, "block_bytes": block_bytes, "rss_start": rss_start,
        "rss_model": rss_model, "peak": peak, "working": peak - rss_model, "blocks": blocks,
        "seconds": stats.seconds,
    }


@dataclass
class Row:
    shape: str
    layers: int
    method: str
    result: dict

    @property
    def per_block(self) -> tuple[float, float]:
        """(calibration passes, rest) seconds of one block: the mean over blocks after the first,
        whose time also holds capturing the embeddings (the first block alone when depth is 1)."""
        blocks = self.result["blocks"][1:] or self.result["blocks"]
        passes = sum(b["passes"] for b in blocks) / len(blocks)
        total = sum(b["seconds"] for b in blocks) / len(blocks)
        return passes, total - passes


def project(row: Row, cpu_rate: float) -> dict[str, float]:
    hidden, mlp, heads, kv_heads, depth = SHAPES[row.shape]
    tokens = row.result["ns"] * row.result["seqlen"]
    passes, rest = row.per_block
    head_bytes = 2 * VOCAB * hidden * 4  # embeddings + LM head, float32
    block_bytes = row.result["block_bytes"]
    full_model = depth * block_bytes + head_bytes
    out = {
        "cpu_hours": depth * (passes * CPU_TOKENS / tokens + rest) / 3600,
        "cpu_peak_gb": (row.result["rss_start"] + full_model + row.result["working"]) / 1e9,
        "gpu_peak_gb": (block_bytes / 2 + row.result["working"]) / 1e9,
    }
    transfer = 2 * (block_bytes / 2) / PCIE_BYTES_PER_S
    for name, rate in GPU_RATES.items():
        scale = cpu_rate / rate
        per_block = (passes * GPU_TOKENS / tokens + rest) * scale + transfer
        out[f"gpu_minutes[{name}]"] = depth * per_block / 60
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--methods", default="wanda-50,sparsegpt-50,gptq-4,awq-4")
    parser.add_argument("--layers", default="1,2", help="depths to build (the working set must not grow)")
    parser.add_argument("--deep-shapes", default="llama-2-7b",
                        help="shapes built at every depth in --layers; the others at the first depth only")
    parser.add_argument("--ns", type=int, default=4, help="calibration windows")
    parser.add_argument("--seqlen", type=int, default=512, help="tokens per calibration window")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write every row as JSON to this file")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return

    import torch

    cpu_rate = cpu_matmul_rate()
    print(f"# {time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"float32 matrix product {cpu_rate / 1e9:.1f} GFLOP/s; calibration {args.ns} x {args.seqlen} tokens")
    depths = [int(d) for d in args.layers.split(",")]
    deep = set(args.deep_shapes.split(","))
    rows: list[Row] = []
    for shape in args.shapes.split(","):
        for layers in depths if shape in deep else depths[:1]:
            for method in args.methods.split(","):
                job = {"shape": shape, "layers": layers, "method": method, "ns": args.ns, "seqlen": args.seqlen}
                done = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True, check=False,
                )
                if done.returncode != 0:
                    tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
                    print(f"{shape} x{layers} {method}: FAILED {tail[0]}", flush=True)
                    continue
                row = Row(shape, layers, method, json.loads(done.stdout.strip().splitlines()[-1]))
                rows.append(row)
                passes, rest = row.per_block
                r = row.result
                print(f"{shape:12} x{layers} {method:13} block {passes + rest:7.1f} s (passes {passes:6.1f}, "
                      f"rest {rest:6.1f})  model {r['model_bytes'] / 1e9:5.2f} GB  peak {r['peak'] / 1e9:5.2f} GB  "
                      f"working set {r['working'] / 1e9:5.2f} GB (block {r['block_bytes'] / 1e9:.2f} GB)", flush=True)
    print("\n# projections to full depth (assumptions in the module docstring)")
    for row in rows:
        if row.layers != max(r.layers for r in rows if r.shape == row.shape and r.method == row.method):
            continue
        cells = "  ".join(f"{k} {v:.2f}" for k, v in project(row, cpu_rate).items())
        print(f"{row.shape:12} {row.method:13} {cells}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cpu_rate": cpu_rate, "rows": [r.__dict__ for r in rows]}, handle, indent=1)


if __name__ == "__main__":
    main()
