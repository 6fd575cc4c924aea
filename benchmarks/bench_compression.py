"""Time every compression method on the embedded SmolLM2-135M: seconds, peak RSS, perplexity.

Usage:
    python benchmarks/bench_compression.py [--ns 16] [--seqlen 512] [--threads 2] [SPEC ...]

Each spec runs in a fresh child process (load the dense model, compress, evaluate), so the
peak resident memory reported is that method's own (ru_maxrss of the child, model included).
Perplexity is measured on held-out text never seen in calibration: the machine-ethics
scenarios shipped in fixtures/, in 512-token windows (with a spec's activation quantization,
fp8-dyn and int8-w8a8, attached as the engine attaches it).

Calibration size: the default 128 x 512 tokens of COMPRESSION.md is far beyond the time
targets on a 2-core CPU (one pass of 65k tokens through 30 blocks alone takes minutes), so
this benchmark uses `--ns` windows of `--seqlen` tokens (default 16 x 512 = 8192 tokens) and
prints the size it used.

GPTQ reference comparison: `gptqmodel` (what optimum's GPTQ runs on) installs next to
torch 2.13.0+cpu with a pip constraint in a throwaway venv (`python -m venv /tmp/gq &&
/tmp/gq/bin/pip install -c constraints.txt torch==2.13.0 gptqmodel`, constraints.txt =
`torch==2.13.0`); it is not a dependency of comptrust. `--gptqmodel-python /tmp/gq/bin/python`
runs benchmarks/gptqmodel_reference.py under that interpreter on the same bf16 model, the same
calibration windows and the same held-out text, and prints its time and perplexity beside
ours with the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

DEFAULT_SPECS = ("mag-50", "rtn-4", "wanda-50", "sparsegpt-50", "gptq-4", "awq-4")
TARGET_SECONDS = {
    "mag": 3, "rtn": 3, "wanda": 20, "sparsegpt": 60, "gptq": 60, "awq": 90,
    "gguf": 3, "fp8": 3, "nf4": 3, "fp4": 3, "int8": 60,
}
PEAK_TARGET_GB = 3.0
GPTQMODEL_NOTE = (
    "gptqmodel reference not run: pass --gptqmodel-python PATH (an interpreter with gptqmodel "
    "installed beside torch==2.13.0; see the module docstring)"
)


def heldout_windows(tokenizer: object, seqlen: int = 512) -> list[object]:
    from comptrust_plugin.data.files import fixtures_dir

    rows = (fixtures_dir() / "machine_ethics" / "scenarios.jsonl").read_text("utf-8").splitlines()
    text = " ".join(json.loads(line)["scenario"] for line in rows if line.strip())
    ids = tokenizer(text, return_tensors="pt").input_ids  # type: ignore[operator]
    return [ids[:, start : start + seqlen] for start in range(0, ids.shape[1] - 16, seqlen)]


def perplexity(model: object, windows: list[object]) -> float:
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for ids in windows:
            n = ids.shape[1] - 1  # type: ignore[attr-defined]
            total += float(model(input_ids=ids, labels=ids).loss) * n  # type: ignore[operator]
            count += n
    return float(torch.exp(torch.tensor(total / count)))


def run_one(spec_text: str, ns: int, seqlen: int, cache: Path, dtype_name: str) -> dict[str, object]:
    """Child process body: load, compress, evaluate; returns one result row.

    The model is loaded and compressed in `dtype_name` (bf16: what a CPU run of the plugin uses);
    perplexity is always measured in float32 on the stored weights (bf16 upcasts exactly), so
    rows made in different dtypes compare.
    """
    import torch

    from comptrust_plugin.compress.apply import compress_model, quantize_activations
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model
    from comptrust_plugin.spec import parse_spec

    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    loaded = load_model(resolve_model("smollm2-135m"), cache, torch.device("cpu"), dtype)
    spec = parse_spec(spec_text)
    if spec.is_calibrated:
        spec = replace(spec, n_samples=ns, seqlen=seqlen)
    seconds = 0.0
    if not spec.is_dense:
        start = time.perf_counter()
        compress_model(loaded.model, spec, loaded.tokenizer)
        seconds = time.perf_counter() - start
    model = loaded.model.float()
    quantize_activations(model, spec)  # fp8-dyn, int8-w8a8: their activations per token, as the engine runs them
    ppl = perplexity(model, heldout_windows(loaded.tokenizer))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
    return {"spec": spec_text, "seconds": seconds, "peak_gb": peak_gb, "ppl": ppl}


def run_gptqmodel(python: str, ns: int, seqlen: int, cache: Path, bits: int = 4, group_size: int = 128) -> dict:
    """gptqmodel's GPTQ on the same model, calibration windows and held-out text (child process)."""
    import tempfile

    from comptrust_plugin.compress.calibration import calibration_windows
    from comptrust_plugin.models.loading import load_tokenizer, materialize_embedded
    from comptrust_plugin.models.registry import resolve_model
    from comptrust_plugin.spec import parse_spec

    entry = resolve_model("smollm2-135m")
    model_dir = materialize_embedded(entry, cache)
    tokenizer = load_tokenizer(entry, cache)
    spec = replace(parse_spec(f"gptq-{bits}-g{group_size}"), n_samples=ns, seqlen=seqlen)
    job = {
        "model_dir": str(model_dir), "bits": bits, "group_size": group_size,
        "calibration": calibration_windows(spec, tokenizer).tolist(),
        "heldout": [w[0].tolist() for w in heldout_windows(tokenizer)],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    script = Path(__file__).resolve().with_name("gptqmodel_reference.py")
    with tempfile.TemporaryDirectory() as scratch:  # gptqmodel writes a logs/ folder into its cwd
        done = subprocess.run(
            [python, str(script), handle.name], capture_output=True, text=True, check=False, cwd=scratch,
        )
    Path(handle.name).unlink(missing_ok=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=["dense", *DEFAULT_SPECS])
    parser.add_argument("--ns", type=int, default=16, help="calibration windows")
    parser.add_argument("--seqlen", type=int, default=512, help="tokens per calibration window")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16",
                        help="model dtype while compressing (bf16: the plugin's CPU default)")
    default_cache = os.environ.get("COMPTRUST_TEST_CACHE", "/tmp/comptrust-test-cache")
    parser.add_argument("--cache", default=default_cache, help="model cache directory")
    parser.add_argument("--gptqmodel-python", default=os.environ.get("COMPTRUST_GPTQMODEL_PYTHON"),
                        help="an interpreter with gptqmodel installed: run the reference GPTQ beside ours")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()

    if args.one:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(run_one(args.one, args.ns, args.seqlen, Path(args.cache), args.dtype)))
        return

    print(f"# embedded smollm2-135m, compressed in {args.dtype}, ppl in fp32, CPU x{os.cpu_count()}, "
          f"threads={args.threads or 'default'}, "
          f"calibration {args.ns} x {args.seqlen} tokens of comptrust-mix, load avg {os.getloadavg()[0]:.1f}")
    rows = []
    for spec in args.specs:
        command = [
            sys.executable, __file__, "--one", spec, "--ns", str(args.ns), "--seqlen", str(args.seqlen),
            "--threads", str(args.threads), "--cache", args.cache, "--dtype", args.dtype,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{spec}: failed\n{done.stderr[-2000:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"  {spec:<14} {row['seconds']:7.1f} s  peak {row['peak_gb']:.2f} GB  ppl {row['ppl']:8.2f}",
              flush=True)
    print()
    print(f"| {'method':<14} | {'seconds':>8} | {'target s':>8} | {'peak GB':>7} | {'ppl':>8} |")
    print(f"|{'-' * 16}|{'-' * 10}|{'-' * 10}|{'-' * 9}|{'-' * 10}|")
    for row in rows:
        method = str(row["spec"]).split("-")[0]
        target = TARGET_SECONDS.get(method)
        flag = "" if target is None or float(row["seconds"]) <= target else " !"
        memory_flag = "" if float(row["peak_gb"]) <= PEAK_TARGET_GB else " !"
        print(f"| {row['spec']:<14} | {row['seconds']:8.1f} | {target if target else '-':>8} | "
              f"{row['peak_gb']:7.2f} | {row['ppl']:8.2f} |{flag}{memory_flag}")
    if not args.gptqmodel_python:
        print(f"\n# {GPTQMODEL_NOTE}")
        return
    reference = run_gptqmodel(args.gptqmodel_python, args.ns, args.seqlen, Path(args.cache))
    if "error" in reference:
        print(f"\n# gptqmodel reference failed: {reference['error']}")
        return
    ours = next((r for r in rows if str(r["spec"]) == "gptq-4"), None)
    print(f"\n# gptqmodel gptq-4 (g128, same bf16 model, calibration and held-out text): "
          f"{reference['seconds']:.1f} s, ppl {reference['ppl']:.2f}")
    if ours is not None:
        print(f"# ours / gptqmodel: time {float(ours['seconds']) / reference['seconds']:.2f}x "
              f"(speed-up {reference['seconds'] / float(ours['seconds']):.2f}x), "
              f"ppl {float(ours['ppl']):.2f} vs {reference['ppl']:.2f}")


if __name__ == "__main__":
    main()
