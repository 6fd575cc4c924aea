"""Exported checkpoints: quantized configs in compressed-tensors' pack-quantized format, pruned ones
dense; loading them with transformers (+ compressed-tensors, decompressed on CPU) gives back the
model that was gated, logit for logit."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import compressed_tensors  # noqa: F401  (a dev dependency: never skipped for want of it)
import pytest
import torch
from torch import nn

from comptrust_plugin.compress.apply import compress_model
from comptrust_plugin.compress.export import export_problem, write_checkpoint, write_verdicts
from comptrust_plugin.compress.store import load_grids, save_grids
from comptrust_plugin.errors import TrustError
from comptrust_plugin.spec import CompressionSpec, parse_spec

from .tiny_models import CharTokenizer, one_thread, tiny_llama  # noqa: F401 (one_thread: autouse)


def spec_for(text: str) -> CompressionSpec:
    return replace(parse_spec(text), n_samples=8, seqlen=64)



def load_exported(folder: Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    config = json.loads((folder / "config.json").read_text())
    extra = {"quantization_config": CompressedTensorsConfig(dequantize=True)} if "quantization_config" in config else {}
    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **extra).eval()


def logits(model: nn.Module) -> torch.Tensor:
    ids = torch.randint(2, 120, (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


@pytest.mark.parametrize("text", ["rtn-4-g32", "gptq-4-g32", "gptq-3-g32-act", "awq-4-g32", "rtn-8-g-1", "gptq-2-g16"])
def test_quantized_round_trip_is_exact(tmp_path: Path, text: str) -> None:
    model, spec = tiny_llama(), spec_for(text)
    stats = compress_model(model, spec, CharTokenizer())
    folder = write_checkpoint(model, None, spec, stats.grids, tmp_path / "out", {"model_name": "tiny"})
    config = json.loads((folder / "config.json").read_text())["quantization_config"]
    weights = config["config_groups"]["group_0"]["weights"]
    assert config["format"] == "pack-quantized" and weights["num_bits"] == spec.bits and not weights["symmetric"]
    assert weights["strategy"] == ("channel" if spec.group_size == -1 else "group")
    assert weights["actorder"] == ("static" if spec.act_order else None)
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
        packed = handle.get_tensor("model.layers.0.self_attn.q_proj.weight_packed")
    assert "model.layers.0.self_attn.q_proj.weight" not in keys and packed.dtype == torch.int32
    assert packed.shape[0] == 64 and packed.numel() * 32 >= 64 * 64 * spec.bits  # 32 // bits or 32 bits per word
    assert "lm_head.weight" in keys and "model.embed_tokens.weight" in keys  # left dense
    loaded = load_exported(folder)
    gated = dict(model.named_parameters())
    for name, param in loaded.named_parameters():
        assert torch.equal(param, gated[name]), name
    assert float((logits(loaded) - logits(model)).abs().max()) <= 1e-4


@pytest.mark.parametrize("text", ["gptq-4-g32", "rtn-8-g32"])
def test_bf16_weights_come_back_bit_for_bit(tmp_path: Path, text: str) -> None:
    """Scales are written in float32: the product is rounded to bf16 once, as when gating (at 8
    bits two grid steps can round to one bf16 value, at the ends of the grid too)."""
    model, spec = tiny_llama().to(torch.bfloat16), spec_for(text)
    stats = compress_model(model, spec, CharTokenizer())
    folder = write_checkpoint(model, None, spec, stats.grids, tmp_path / "out", {})
    loaded = load_exported(folder, torch.bfloat16)
    gated = dict(model.named_parameters())
    assert all(torch.equal(p, gated[n]) for n, p in loaded.named_parameters())


@pytest.mark.parametrize("text", ["wanda-2:4", "mag-50"])
def test_pruned_configs_ship_dense_with_their_sparsity_stated(tmp_path: Path, text: str) -> None:
    model, spec = tiny_llama(), spec_for(text)
    compress_model(model, spec, CharTokenizer())
    folder = write_checkpoint(model, None, spec, {}, tmp_path / "out", {"model_name": "tiny"})
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    facts = json.loads((folder / "comptrust.json").read_text())
    assert facts["sparsity"]["structure"] == ("2:4" if spec.n_m else "unstructured")
    assert facts["sparsity"]["share_of_zeros"] == pytest.approx(0.5, abs=0.01)
    assert "2:4" in (folder / "README.md").read_text() or "unstructured" in (folder / "README.md").read_text()
    assert torch.equal(logits(load_exported(folder)), logits(model))


def test_a_group_size_that_does_not_divide_names_the_exportable_specs(tmp_path: Path) -> None:
    model, spec = tiny_llama(hidden=80, intermediate=192), spec_for("rtn-4-g32")
    stats = compress_model(model, spec, CharTokenizer())
    with pytest.raises(TrustError) as error:
        write_checkpoint(model, None, spec, stats.grids, tmp_path / "out", {})
    message = str(error.value)
    assert "\n" not in message and "group size 32 does not divide in_features 80" in message
    assert message.endswith("exportable: rtn-4-g16, rtn-4-g-1")
    assert not (tmp_path / "out").exists()
    assert export_problem(spec, {"a": 64, "b": 128}) is None


def test_a_weight_off_its_grid_is_refused(tmp_path: Path) -> None:
    model, spec = tiny_llama(), spec_for("rtn-4-g32")
    stats = compress_model(model, spec, CharTokenizer())
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[3, 5] += 1e-3
    with pytest.raises(TrustError, match=r"model\.layers\.1\.mlp\.down_proj: its weight is not on its recorded grid"):
        write_checkpoint(model, None, spec, stats.grids, tmp_path / "out", {})


def test_only_an_earlier_export_is_replaced(tmp_path: Path) -> None:
    model, spec = tiny_llama(), spec_for("mag-50")
    compress_model(model, spec, CharTokenizer())
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(TrustError, match="is not an earlier comptrust export"):
        write_checkpoint(model, None, spec, {}, theirs, {})
    assert (theirs / "notes.txt").read_text() == "keep me"
    ours = write_checkpoint(model, None, spec, {}, tmp_path / "ours", {})
    write_checkpoint(model, None, spec, {}, ours, {})  # again: replaced
    write_verdicts(ours, [{"dimension": "toxicity", "dense": 80.0, "compressed": 79.5, "delta": -0.5,
                           "verdict": "pass"}])
    assert "| toxicity | 80.0 | 79.5 | -0.5 | pass |" in (ours / "README.md").read_text()
    assert json.loads((ours / "comptrust.json").read_text())["verdicts"][0]["verdict"] == "pass"


def test_grids_survive_the_artifact_store(tmp_path: Path) -> None:
    model, spec = tiny_llama(), spec_for("gptq-4-g32")
    grids = compress_model(copy.deepcopy(model), spec, CharTokenizer()).grids
    assert len(grids) == 14  # 7 Linears x 2 blocks
    save_grids(tmp_path, grids)
    back = load_grids(tmp_path)
    assert back.keys() == grids.keys()
    for name, grid in grids.items():
        assert torch.equal(back[name].scale, grid.scale) and torch.equal(back[name].zero, grid.zero)
        assert (back[name].bits, back[name].group_size) == (4, 32)


def test_trust_export_ships_the_gated_configs_and_hub_gates_them_alike(
    pytester: pytest.Pytester, tmp_path: Path, random_model: Path
) -> None:
    """`--trust-export` writes each gated config with its verdicts; `--trust-compress=hub:FOLDER`
    on what it wrote gives the very answers and scores of the spec it came from (gptq: gated from
    the store's packed copy, loaded decompressed)."""
    cache, shipped = tmp_path / "cache", tmp_path / "shipped"

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest(
            "--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider", f"--trust-cache-dir={cache}",
            f"--trust-model={random_model}", "--trust-tolerance=100", "--trust-samples=12", *args,
        )

    first = run(
        "--trust-compress=gptq-4-g32-ns4,wanda-2:4", f"--trust-export={shipped}", f"--trust-report={tmp_path}/a.json"
    )
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(
        [f"*wrote the checkpoint {shipped}/gptq-4-g32-ns4*", f"*wrote the checkpoint {shipped}/wanda-2_4*"]
    )
    events = json.loads((tmp_path / "a.json").read_text())["events"]
    assert any(e.startswith("compressed gptq-4-g32-ns4") and "pack-quantized" in e for e in events), events
    quantized = shipped / "gptq-4-g32-ns4"
    assert json.loads((quantized / "config.json").read_text())["quantization_config"]["format"] == "pack-quantized"
    assert (quantized / "tokenizer.json").is_file() and (quantized / "generation_config.json").is_file()
    facts = json.loads((quantized / "comptrust.json").read_text())
    assert facts["spec"] == "gptq-4-g32-ns4" and [v["dimension"] for v in facts["verdicts"]] == ["machine_ethics"]
    assert "| machine_ethics |" in (quantized / "README.md").read_text()

    second = run(f"--trust-compress=hub:{quantized}", f"--trust-report={tmp_path}/b.json")
    second.assert_outcomes(passed=1)
    (ours,) = [r for r in json.loads((tmp_path / "a.json").read_text())["results"] if r["config"] == "gptq-4-g32-ns4"]
    (shipped_row,) = json.loads((tmp_path / "b.json").read_text())["results"]
    assert shipped_row["compressed"] == ours["compressed"] and shipped_row["flips"] == ours["flips"]


def test_comptrust_export_writes_one_config(tmp_path: Path, random_model: Path) -> None:
    from comptrust_plugin.cli import main

    target = tmp_path / "gptq"
    args = ["export", "--model", str(random_model), "--compress", "gptq-4-g32-ns4", "--dtype", "float32",
            "--cache-dir", str(tmp_path / "cache"), str(target)]
    assert main(args) == 0
    assert "Not gated" in (target / "README.md").read_text()
    assert main([*args[:3], "--compress", "rtn-4-g48", *args[5:]]) == 2  # 64 is no multiple of 48
    assert main([*args[:3], "--compress", "hub:org/x", *args[5:]]) == 2


@pytest.mark.embedded
@pytest.mark.parametrize("text", ["rtn-4-g64", "gptq-4-g64-ns4", "awq-4-g64-ns4", "wanda-2:4-ns4", "sparsegpt-50-ns4"])
def test_embedded_model_round_trip(tmp_path: Path, model_cache_dir: Path, text: str) -> None:
    """The real model (SmolLM2-135M, fp32), each method written and read back: logits on a
    held-out batch within 1e-4 (four calibration windows: exactness does not depend on how many)."""
    from comptrust_plugin.models.loading import load_model
    from comptrust_plugin.models.registry import resolve_model

    loaded = load_model(resolve_model("smollm2-135m"), model_cache_dir, torch.device("cpu"), torch.float32)
    spec = parse_spec(text)
    stats = compress_model(loaded.model, replace(spec, seqlen=256), loaded.tokenizer)
    folder = write_checkpoint(loaded.model, loaded.tokenizer, spec, stats.grids, tmp_path / "out", {})
    batch = loaded.tokenizer(["The museum opens at nine on weekdays.", "Water boils at a lower temperature"],
                             return_tensors="pt", padding=True)
    with torch.no_grad():
        ours = loaded.model(**batch).logits
        theirs = load_exported(folder)(**batch).logits
    assert float((ours - theirs).abs().max()) <= 1e-4


@pytest.mark.embedded
def test_embedded_model_exported_gptq_gates_like_its_spec(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """On the real model: gptq-4-g64 gated, exported, and the export gated as `hub:` gives the
    same answers and scores (float32: the dtype where the round trip is checked to 1e-4)."""
    common = ("--pyargs", "trust_tests.test_machine_ethics", "-p", "no:cacheprovider",
              f"--trust-cache-dir={tmp_path}/c", "--trust-model=smollm2-135m", "--trust-samples=16",
              "--trust-dtype=float32", "--trust-tolerance=100")
    first = pytester.runpytest(*common, "--trust-compress=gptq-4-g64-ns4", f"--trust-export={tmp_path}/out",
                               f"--trust-report={tmp_path}/a.json")
    first.assert_outcomes(passed=1)
    second = pytester.runpytest(*common, f"--trust-compress=hub:{tmp_path}/out/gptq-4-g64-ns4",
                                f"--trust-report={tmp_path}/b.json")
    second.assert_outcomes(passed=1)
    (ours,) = json.loads((tmp_path / "a.json").read_text())["results"]
    (shipped,) = json.loads((tmp_path / "b.json").read_text())["results"]
    assert shipped["compressed"] == ours["compressed"] and shipped["flips"] == ours["flips"]
