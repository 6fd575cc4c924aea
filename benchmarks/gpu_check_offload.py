"""GPU check: calibrated compression with the weights in host memory and one block at a time on the GPU.

Usage (on a machine with a CUDA GPU; needs only torch, transformers and comptrust):
    python benchmarks/gpu_check_offload.py [--shape llama-2-7b] [--layers 4] [--methods gptq-4,wanda-50]

For each method: a random-initialised Llama with the layer shapes of `--shape` and `--layers`
blocks, in bf16 on the host, compressed by the runner with `accelerator=cuda`; then the same
model compressed on the CPU. Prints the GPU's peak allocated memory beside the model's and one
block's size (the target: peak below the model once depth >= 4, about one block plus the
method's statistics), the seconds on each device, and how far the two results are apart
(pruning: share of masks that differ; quantization: largest difference in grid steps).
Not a benchmark with a stored figure until it has run on a GPU.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace

SHAPES = {  # hidden, MLP width, attention heads, KV heads
    "llama-2-7b": (4096, 11008, 32, 32), "llama-2-13b": (5120, 13824, 40, 40), "llama-2-70b": (8192, 28672, 64, 8),
}


def main() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from comptrust_plugin.compress.apply import make_compressor
    from comptrust_plugin.compress.layers import model_linears
    from comptrust_plugin.compress.runner import run_layerwise
    from comptrust_plugin.spec import parse_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="llama-2-7b", choices=sorted(SHAPES))
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--methods", default="gptq-4,wanda-50")
    parser.add_argument("--ns", type=int, default=8)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check_offload.py needs a CUDA GPU")
    hidden, mlp, heads, kv = SHAPES[args.shape]
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=hidden, intermediate_size=mlp, num_attention_heads=heads, num_key_value_heads=kv,
                         num_hidden_layers=args.layers, vocab_size=32000)
    dense = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    model_gb = sum(p.numel() * p.element_size() for p in dense.parameters()) / 1e9
    block_gb = sum(p.numel() * p.element_size() for p in dense.model.layers[0].parameters()) / 1e9
    print(f"# {torch.cuda.get_device_name()}: {args.shape} x{args.layers}, bf16 model {model_gb:.2f} GB, "
          f"one block {block_gb:.2f} GB, calibration {args.ns} x 512 random tokens")
    for method in args.methods.split(","):
        spec = replace(parse_spec(method), n_samples=args.ns, seqlen=512)
        ids = torch.randint(0, 32000, (args.ns, 512), generator=torch.Generator().manual_seed(0))  # same work as text
        on_gpu, on_cpu = copy.deepcopy(dense), copy.deepcopy(dense)
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        run_layerwise(on_gpu, ids, make_compressor(spec), accelerator=torch.device("cuda"))
        gpu_seconds, peak_gb = time.perf_counter() - start, torch.cuda.max_memory_allocated() / 1e9
        start = time.perf_counter()
        run_layerwise(on_cpu, ids, make_compressor(spec))
        cpu_seconds = time.perf_counter() - start
        a, b = model_linears(on_gpu), model_linears(on_cpu)
        if spec.method in ("wanda", "sparsegpt"):
            differ = sum(int(((a[n].weight == 0) != (b[n].weight == 0)).sum()) for n in a)
            total = sum(a[n].weight.numel() for n in a)
            agree = f"masks differ on {100 * differ / total:.4f}% of weights"
        else:
            steps = max(float((a[n].weight.float() - b[n].weight.float()).abs().max()) for n in a)
            agree = f"largest weight difference {steps:.3g}"
        on_host = all(p.device.type == "cpu" for p in on_gpu.parameters())
        print(f"{method:13} GPU {gpu_seconds:7.1f} s, peak allocated {peak_gb:6.2f} GB "
              f"({peak_gb / model_gb:.2f}x the model, {peak_gb / block_gb:.2f}x one block); CPU {cpu_seconds:7.1f} s; "
              f"{agree}; weights back on the host: {on_host}")


if __name__ == "__main__":
    main()
