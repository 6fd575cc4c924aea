"""Big models on one node: a model that does not fit one GPU is split over the visible GPUs by
accelerate's device map (decided from sizes alone, so it is tested here without a GPU); a CPU
run loads exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from comptrust_plugin.errors import TrustError
from comptrust_plugin.models import loading
from comptrust_plugin.models.placement import GIB, KEEP_FREE, Placement, plan_placement, weight_bytes
from comptrust_plugin.models.registry import resolve_model


def test_a_model_that_fits_the_first_gpu_stays_on_it() -> None:
    assert plan_placement("m", 10 * GIB, [80 * GIB, 80 * GIB], True) == Placement()
    assert plan_placement("m", int(80 * GIB * (1 - KEEP_FREE)), [80 * GIB], True) == Placement()
    assert plan_placement("m", 10 * GIB, [], False) == Placement()  # no GPU: nothing to decide


def test_a_model_over_one_gpu_is_split_over_the_visible_ones() -> None:
    placement = plan_placement("llama-70b", 140 * GIB, [80 * GIB, 80 * GIB, 80 * GIB], True)
    assert placement.device_map == "auto"
    assert placement.max_memory == {i: int(80 * GIB * (1 - KEEP_FREE)) for i in range(3)}
    assert placement.from_pretrained_kwargs() == {"device_map": "auto", "max_memory": placement.max_memory}
    assert "split over 3 GPUs" in (placement.note or "") and "KV cache" not in (placement.note or "")


def test_a_split_that_needs_the_kept_share_says_to_lower_the_batch() -> None:
    free = [79 * GIB, 70 * GIB]
    placement = plan_placement("m", 140 * GIB, free, True)  # over 85% of 149 GiB, under 149 GiB
    assert placement.max_memory == {0: free[0], 1: free[1]}
    assert "--trust-batch-tokens" in (placement.note or "")


def test_one_gpu_nearly_big_enough_is_tried_as_before() -> None:
    assert plan_placement("m", 75 * GIB, [78 * GIB], True) == Placement()


def test_weights_no_gpu_set_can_hold_are_one_line() -> None:
    with pytest.raises(TrustError, match=r"about 140\.0 GiB and the 2 visible GPUs have 80\.0 GiB free.*vllm"):
        plan_placement("llama-70b", 140 * GIB, [40 * GIB, 40 * GIB], True)
    with pytest.raises(TrustError, match="this GPU has"):
        plan_placement("llama-70b", 140 * GIB, [80 * GIB], True)


def test_without_accelerate_the_line_names_it_and_vllm() -> None:
    with pytest.raises(TrustError) as info:
        plan_placement("llama-70b", 140 * GIB, [80 * GIB, 80 * GIB], False)
    message = str(info.value)
    assert "\n" not in message and "pip install accelerate" in message and "--trust-backend=vllm" in message


def test_weight_bytes_counts_the_model_from_its_config(random_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(random_model), dtype=torch.float32)
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    expected = sum(t.numel() * t.element_size() for t in tensors.values())
    assert weight_bytes(str(random_model), {"trust_remote_code": False}, torch.float32) == expected
    assert weight_bytes(str(random_model), {}, torch.bfloat16) < expected  # counted in the run's dtype


def test_weight_bytes_leaves_quantized_checkpoints_alone(random_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "quantized"
    folder.mkdir()
    config = json.loads((random_model / "config.json").read_text(encoding="utf-8"))
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert weight_bytes(str(folder), {}, torch.float32) is None


def test_a_cpu_run_loads_as_before(random_model: Path, tmp_path: Path, monkeypatch) -> None:
    def never(*args, **kwargs):
        raise AssertionError("a CPU run must not size the model")

    monkeypatch.setattr(loading, "weight_bytes", never)
    loaded = loading.load_model(resolve_model(str(random_model)), tmp_path, torch.device("cpu"), torch.float32)
    assert loaded.device == torch.device("cpu") and loaded.note is None
    assert not hasattr(loaded.model, "hf_device_map")


def test_a_split_reaches_from_pretrained(random_model: Path, tmp_path: Path, monkeypatch) -> None:
    """With two GPUs too small for the model (simulated), from_pretrained gets accelerate's
    device map and the budgets, and the model is not moved afterwards."""
    from transformers import AutoModelForCausalLM

    size = weight_bytes(str(random_model), {}, torch.float32)
    monkeypatch.setattr(loading, "free_gpu_bytes", lambda device: [size // 2 + 1, size // 2 + 1])
    monkeypatch.setattr(loading, "has_accelerate", lambda: True)
    seen: dict = {}
    original = AutoModelForCausalLM.from_pretrained

    def from_pretrained(*args, **kwargs):
        seen.update(device_map=kwargs.pop("device_map", None), max_memory=kwargs.pop("max_memory", None))
        return original(*args, **kwargs)  # loaded on the CPU: no GPU here

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    loaded = loading.load_model(resolve_model(str(random_model)), tmp_path, torch.device("cuda"), torch.float32)
    assert seen == {"device_map": "auto", "max_memory": {0: size // 2 + 1, 1: size // 2 + 1}}
    assert loaded.device == torch.device("cpu")  # where the embeddings are, not the device asked
    assert "split over 2 GPUs" in (loaded.note or "") and "--trust-batch-tokens" in loaded.note
