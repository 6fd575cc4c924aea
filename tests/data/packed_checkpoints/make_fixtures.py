"""Make GPTQ/AWQ reference fixtures with the real gptqmodel library.

What it makes (under the folder holding this script):
  dense/                     tiny random LlamaForCausalLM (float16, safetensors) + a WordLevel
                             tokenizer built in code (gptqmodel loads a tokenizer unconditionally)
  <config>/                  one gptqmodel-quantized checkpoint per config in CONFIGS, written by
                             gptqmodel's own save (config.json with quantization_config,
                             quantize_config.json, model.safetensors with qweight/qzeros/scales/g_idx)
  <config>/reference.safetensors
                             `<module>.weight`: gptqmodel's own dequantized weight of every quantized
                             Linear, [out, in] as nn.Linear stores it, in the dtype gptqmodel returns;
                             `input_ids` (int64) and `logits` (float32) of the quantized model forward.
  README.md                  folder list with each folder's saved format/method/bits/group/sym/desc_act.

Produced with: gptqmodel 7.6.0, transformers 5.25.0, torch 2.13.0+cpu (CPU only, torch.compile
disabled via TORCH_COMPILE_DISABLE=1 so gptqmodel's eager dequantize code runs).
Run (in an environment with gptqmodel; not a test dependency):  python make_fixtures.py [config-name ...]
"""
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# gptqmodel 7.6 gives a 2-core host 1 cpu worker but its "model_loader:cpu" pool wants 2 (ValueError).
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

import gptqmodel  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from gptqmodel import BACKEND, GPTQModel, QuantizeConfig  # noqa: E402
from gptqmodel.nn_modules.qlinear import BaseQuantLinear  # noqa: E402
from gptqmodel.nn_modules.qlinear.torch import TorchLinear  # noqa: E402
from gptqmodel.nn_modules.qlinear.torch_awq import AwqTorchLinear  # noqa: E402
from gptqmodel.quantization import FORMAT, METHOD  # noqa: E402
from gptqmodel.quantization.awq.utils.packing_utils import dequantize_gemm  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

VERSIONS = {"gptqmodel": gptqmodel.__version__, "transformers": transformers.__version__,
            "torch": torch.__version__}
ROOT = Path(__file__).resolve().parent
DENSE = ROOT / "dense"
VOCAB = 128  # small to keep the fixtures under ~2 MB; embeddings are never quantized

# name -> QuantizeConfig kwargs. GPTQ folders are saved as FORMAT.GPTQ (v1 checkpoint layout).
CONFIGS = {
    "gptq-4-g32-sym": dict(bits=4, group_size=32, sym=True, desc_act=False),
    "gptq-4-g32-asym-act": dict(bits=4, group_size=32, sym=False, desc_act=True),
    "gptq-3-g32-sym-act": dict(bits=3, group_size=32, sym=True, desc_act=True),
    # gptqmodel refuses its default act_group_aware=True when group_size is -1
    "gptq-2-g-1-sym": dict(bits=2, group_size=-1, sym=True, desc_act=False, act_group_aware=False),
    "gptq-8-g64-asym": dict(bits=8, group_size=64, sym=False, desc_act=False),
    "awq-4-g32-gemm": dict(bits=4, group_size=32, sym=False, method=METHOD.AWQ, format=FORMAT.GEMM),
}


def build_dense() -> None:
    """Tiny random Llama (fixed seed) and an offline WordLevel tokenizer, saved to dense/."""
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        # head_dim 32 (not hidden/heads = 16) so k/v_proj have 64 outputs: gptqmodel's AWQ clip
        # search asserts out_features % 64 == 0 for every clipped Linear (v_proj included).
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=128,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    model = LlamaForCausalLM(cfg).to(torch.float16).eval()
    # A few all-positive output rows: asymmetric quantizers pick zero point 0 there, which
    # exercises the GPTQ v1 "stored = zero - 1" underflow/borrow case.
    with torch.no_grad():
        for name, rows in (("model.layers.0.mlp.up_proj", slice(0, 4)),
                           ("model.layers.1.mlp.down_proj", slice(9, 11))):
            w = model.get_submodule(name).weight
            w[rows] = w[rows].abs() + 0.01
    model.save_pretrained(DENSE, safe_serialization=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({f"t{i}": i for i in range(4, VOCAB)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
    ).save_pretrained(DENSE)


def calibration() -> list:
    """8 seeded random sequences of 64 token ids (no special ids)."""
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(4, VOCAB, (8, 64), generator=g)
    return [{"input_ids": row.tolist(), "attention_mask": [1] * 64} for row in ids]


def probe_ids() -> torch.Tensor:
    """Fixed [2, 8] int64 batch for the reference logits."""
    g = torch.Generator().manual_seed(99)
    return torch.randint(4, VOCAB, (2, 8), generator=g, dtype=torch.int64)


def quantize(name: str, kwargs: dict) -> Path:
    """Quantize dense/ with gptqmodel on CPU and save it with gptqmodel's own save."""
    out = ROOT / name
    shutil.rmtree(out, ignore_errors=True)
    qcfg = QuantizeConfig(**kwargs, offload_to_disk=False, device="cpu")
    model = GPTQModel.load(str(DENSE), quantize_config=qcfg, dtype=torch.float16)
    # AWQ: the default AWQ_GEMM packer is CUDA-only; AwqTorchLinear packs the same GEMM layout on CPU.
    backend = BACKEND.AWQ_TORCH if kwargs.get("method") == METHOD.AWQ else BACKEND.GPTQ_TORCH
    model.quantize(calibration(), batch_size=1, backend=backend)
    model.save(str(out))
    (out / "quant_log.csv").unlink(missing_ok=True)  # per-module losses; not part of the format
    return out


@torch.inference_mode()
def write_reference(folder: Path, method: str) -> dict:
    """Load `folder` with gptqmodel's torch kernels; store its dequantized weights and logits."""
    backend = BACKEND.AWQ_TORCH if method == "awq" else BACKEND.GPTQ_TORCH
    model = GPTQModel.load(str(folder), device="cpu", backend=backend, dtype=torch.float16)
    ref, kernels, dtypes = {}, set(), set()
    for name, mod in model.model.named_modules():
        if isinstance(mod, BaseQuantLinear):
            kernels.add(type(mod).__name__)
            w = dequantized(mod)
            assert tuple(w.shape) == (mod.out_features, mod.in_features), (name, w.shape)
            ref[f"{name}.weight"] = w.contiguous()
            dtypes.add(str(w.dtype))
    ids = probe_ids()
    ref["input_ids"] = ids
    ref["logits"] = model.model(input_ids=ids).logits.float().contiguous()
    info = {"kernels": ",".join(sorted(kernels)), "weight_dtypes": ",".join(sorted(dtypes)), **VERSIONS}
    save_file(ref, str(folder / "reference.safetensors"), metadata=info)
    return info


def dequantized(mod) -> torch.Tensor:
    """gptqmodel's own dequantization of one quantized Linear, returned as [out, in]."""
    assert not mod.training  # TorchLinear picks its eval-time dequant path
    if isinstance(mod, TorchLinear):  # TorchLinear.dequantize_weight returns [in, out]
        return mod.dequantize_weight().T
    if isinstance(mod, AwqTorchLinear):  # the function AwqTorchLinear.forward uses: [in, out]
        return dequantize_gemm(mod.qweight, mod.qzeros, mod.scales, mod.bits, mod.group_size).T
    raise TypeError(f"no dequantize path known for {type(mod).__name__}")


README_HEAD = """# gptqmodel reference fixtures

Made by `make_fixtures.py` with gptqmodel {gptqmodel}, transformers {transformers}, torch {torch}
(CPU). Each folder is gptqmodel's own save plus `reference.safetensors`:
gptqmodel's dequantized weights (`<module>.weight`, [out, in]), `input_ids` (int64) and `logits`
(float32) of its quantized forward, loaded with dtype float16 (CPU auto-dtype would be bfloat16).

| folder | quant_method | checkpoint_format | bits | group_size | sym / zero_point | desc_act \
| act_group_aware | load kernel | weight dtype |
|---|---|---|---|---|---|---|---|---|---|
"""


def readme_row(name: str, info: dict) -> str:
    qc = json.loads((ROOT / name / "config.json").read_text())["quantization_config"]
    sym = qc["sym"] if "sym" in qc else f"zero_point={qc.get('zero_point')}"
    cells = [name, qc["quant_method"], qc["checkpoint_format"], qc["bits"], qc["group_size"], sym,
             qc["desc_act"], qc["meta"].get("act_group_aware"), info["kernels"], info["weight_dtypes"]]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main(selected: list) -> None:
    shutil.rmtree(DENSE, ignore_errors=True)
    build_dense()
    rows = []
    for name, kwargs in CONFIGS.items():
        if selected and name not in selected:
            continue
        method = "awq" if kwargs.get("method") == METHOD.AWQ else "gptq"
        folder = quantize(name, kwargs)
        info = write_reference(folder, method)
        rows.append(readme_row(name, info))
        print(rows[-1])
    for path in ROOT.rglob("*.safetensors"):  # the patched safetensors writer leaves files 0600
        path.chmod(0o644)
    if not selected:
        (ROOT / "README.md").write_text(README_HEAD.format(**VERSIONS) + "\n".join(rows) + "\n")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="gptq-fixtures-") as scratch:
        os.chdir(scratch)  # gptqmodel writes ./logs/ while quantizing
        main(sys.argv[1:])
