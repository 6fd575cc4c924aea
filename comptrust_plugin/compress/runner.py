"""The layer-sequential calibration runner shared by Wanda, SparseGPT, GPTQ and AWQ.

One skeleton for every calibrated method (COMPRESSION.md): embed the calibration windows and
capture what the first decoder block receives, then walk the blocks in order. For each block
the method hooks the Linears, runs the calibration activations through it, and compresses it;
the runner then re-runs the *compressed* block so its outputs become the next block's inputs.
Only one block's inputs and outputs are alive at a time.

Weights on the host, one block on the accelerator (`accelerator`): the model stays where it was
loaded (CPU memory, a 70B model included); the embeddings run there, then the calibration
activations move to the accelerator and each block visits it in turn: moved there, compressed,
re-run, moved back. Peak accelerator memory is one block, its calibration activations and the
method's statistics, whatever the depth. Without `accelerator` the blocks stay on the model's
device (the same steps, nothing moves).

Blocks of transformers 5.x take their attention mask and rotary position embeddings as
keyword arguments, and Gemma-3 gives different ones to sliding and full attention layers, so
the keyword arguments of *every* block are captured once (a forward pre-hook with kwargs on a
single window); all windows have the same length and no padding, so they are the same for
every window and broadcast over a batch.

Numerics: a compressor says which dtype its block passes run in (`compute_dtype`): None
means the model's own dtype, as the reference implementations do on GPUs (fp16/bf16 forward
passes); the statistics (activation norms, Hessians) and the weight updates are always
accumulated and computed in float32 from those activations. A compressor that compares
outputs of candidate weights (AWQ's searches) asks for float32. Compressed weights are rounded
to the model's dtype *before* the re-run, so the next block sees exactly the activations the
stored model will produce.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ..errors import TrustError
from .grid import Grid
from .layers import block_linears, blocks_name, find_blocks

# Tokens per forward call through one block: large enough for efficient matmuls, small enough
# that attention and MLP intermediates stay far below the memory budget.
TOKENS_PER_BATCH = 4096


class _StopForward(Exception):
    """Raised by a capture hook to end a forward pass early (nothing after it is needed)."""


@dataclass(frozen=True)
class InputGroup:
    """Linears of one block that read the very same input tensor (q/k/v; gate/up).

    They share one set of input statistics (one Hessian, one activation norm); `producer` is
    the name (inside the block) of the module whose output *is* that tensor, e.g. the
    preceding RMSNorm, or None when the input is computed inline (the MLP's act(gate) * up).
    """

    names: tuple[str, ...]
    producer: str | None


class BlockCompressor(Protocol):
    """One calibrated method: compress one block in place, return scalar diagnostics.

    `compute_dtype`: the dtype of the block's calibration passes (None: the model's dtype).
    """

    compute_dtype: torch.dtype | None

    def compress_block(self, step: BlockStep) -> dict[str, float]: ...


@dataclass
class RunStats:
    blocks: int
    samples: int
    seqlen: int
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)
    grids: dict[str, Grid] = field(default_factory=dict)  # by the Linear's name in the model


def _unwrap(output: Any) -> torch.Tensor:
    """Blocks return a tensor (transformers 5.x) or a tuple whose first item is the hidden states."""
    if isinstance(output, tuple | list):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TrustError(f"a decoder block returned {type(output).__name__}, not hidden states; "
                         "this architecture is not supported for calibrated compression")
    return output


def _moved(value: Any, dtype: torch.dtype, device: torch.device | None = None) -> Any:
    """Floating tensors (rotary cos/sin, additive masks) to `dtype`, every tensor to `device`
    (when given), recursively; other values as they are."""
    if isinstance(value, torch.Tensor):
        value = value.to(device) if device is not None else value
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, tuple | list):
        return type(value)(_moved(v, dtype, device) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, dtype, device) for k, v in value.items()}
    return value


class BlockStep:
    """One decoder block during calibration: its Linears, inputs and a way to run them.

    `inputs` holds the calibration activations entering the block, in the compute dtype,
    shape (samples, seqlen, hidden). Methods attach their own hooks and call `run()`, or use
    `observe_inputs()` for the common case of per-input-group statistics.
    """

    def __init__(
        self, index: int, block: nn.Module, inputs: torch.Tensor, kwargs: dict[str, Any], batch_size: int,
        stored_dtype: torch.dtype,
    ) -> None:
        self.index = index
        self.block = block
        self.inputs = inputs
        self.kwargs = kwargs
        self.batch_size = batch_size
        self.linears = block_linears(block)
        self.grids: dict[str, Grid] = {}  # quantizers record each Linear's grid here (block-local names)
        self.stored_dtype = stored_dtype  # the dtype the model keeps the block in (passes may run in another)
        self._groups: list[InputGroup] | None = None
        self._last_group: InputGroup | None = None

    def batches(self) -> Iterator[torch.Tensor]:
        for start in range(0, self.inputs.shape[0], self.batch_size):
            yield self.inputs[start : start + self.batch_size]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return _unwrap(self.block(hidden, **self.kwargs))

    def run(self) -> None:
        """Run every calibration batch through the block with its current weights (for hooks)."""
        for hidden in self.batches():
            self.forward(hidden)

    def outputs(self) -> torch.Tensor:
        return torch.cat([self.forward(hidden) for hidden in self.batches()])

    @property
    def input_groups(self) -> list[InputGroup]:
        if self._groups is None:
            self.observe_inputs(lambda group, x: None, batches=1)
        assert self._groups is not None
        return self._groups

    def observe_inputs(
        self, observe: Callable[[InputGroup, torch.Tensor], None], batches: int | None = None
    ) -> None:
        """Run the calibration data through the block; call `observe(group, x)` once per input
        group and batch with that group's input as a float32 (tokens, in_features) matrix.

        The groups are discovered on the first batch by tensor identity, so q/k/v (and
        gate/up) are observed once, not three times.
        """
        seen: dict[str, torch.Tensor] = {}
        produced: dict[int, str] = {}
        alive: list[torch.Tensor] = []  # keeps produced tensors alive so their id()s stay unique
        handles = []
        order: list[str] = []  # Linears in the order their inputs are computed

        def remember_input(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
                seen[name] = args[0]
                order.append(name)
            return hook

        def remember_output(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
                # Forward hooks fire innermost first: keep the innermost producer of a tensor.
                if isinstance(output, torch.Tensor):
                    produced.setdefault(id(output), name)
                    alive.append(output)
            return hook

        def observe_leader(group: InputGroup) -> Callable[..., None]:
            def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
                x = args[0]
                observe(group, x.reshape(-1, x.shape[-1]).float())
                if group == self._last_group:
                    raise _StopForward  # nothing after the last group's input is needed
            return hook

        def observe_batch(hidden: torch.Tensor) -> None:
            try:
                self.forward(hidden)
            except _StopForward:
                return

        batch_iter = self.batches()
        first = next(batch_iter)
        if self._groups is None:
            for name, linear in self.linears.items():
                handles.append(linear.register_forward_pre_hook(remember_input(name)))
            for name, module in self.block.named_modules():
                if name and not isinstance(module, nn.Linear):
                    handles.append(module.register_forward_hook(remember_output(name)))
            try:
                self.forward(first)
            finally:
                for handle in handles:
                    handle.remove()
            missing = [name for name in self.linears if name not in seen]
            if missing:
                raise TrustError(f"block {self.index}: Linear(s) {', '.join(missing)} never ran on the "
                                 "calibration data; refusing a partial compression")
            groups: list[InputGroup] = []
            for name in self.linears:
                for index, group in enumerate(groups):
                    if seen[group.names[0]] is seen[name]:
                        groups[index] = InputGroup((*group.names, name), group.producer)
                        break
                else:
                    groups.append(InputGroup((name,), produced.get(id(seen[name]))))
            self._groups = groups
            # the group whose input is computed last (pre-hooks fired in execution order)
            self._last_group = max(groups, key=lambda g: order.index(g.names[0]))
            for group in groups:
                x = seen[group.names[0]]
                observe(group, x.reshape(-1, x.shape[-1]).float())
        else:
            with _hooked_leaders(self, observe_leader):
                observe_batch(first)
        seen.clear()
        produced.clear()
        alive.clear()
        remaining = (batches - 1) if batches is not None else None
        if remaining == 0:
            return
        with _hooked_leaders(self, observe_leader):
            for count, hidden in enumerate(batch_iter):
                if remaining is not None and count >= remaining:
                    break
                observe_batch(hidden)


class _hooked_leaders:
    """Context manager: a pre-hook on the first Linear of each input group."""

    def __init__(self, step: BlockStep, make: Callable[[InputGroup], Callable[..., None]]) -> None:
        assert step._groups is not None
        self.handles = [
            step.linears[group.names[0]].register_forward_pre_hook(make(group)) for group in step._groups
        ]

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def capture_block_inputs(
    model: nn.Module, blocks: nn.ModuleList, input_ids: torch.Tensor, batch_size: int,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Hidden states entering block 0 for every window, and every block's kwargs, in `dtype`."""
    device = _model_device(model)
    hidden: list[torch.Tensor] = []

    def grab_first(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = args[0] if args else kwargs.get("hidden_states")
        if not isinstance(x, torch.Tensor):
            raise TrustError("cannot find the hidden states passed to the first decoder block")
        hidden.append(x.detach().to(dtype))
        raise _StopForward

    block_kwargs: list[dict[str, Any] | None] = [None] * len(blocks)

    def grab_kwargs(index: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            kept = {k: v for k, v in kwargs.items() if k != "hidden_states"}
            kept["use_cache"] = False
            block_kwargs[index] = _moved(kept, dtype)
            if index == len(blocks) - 1:
                raise _StopForward
        return hook

    def skip(hidden_states: Any = None, *args: Any, **kwargs: Any) -> Any:
        return hidden_states  # a block's own kwargs do not depend on what earlier blocks computed

    def forward(ids: torch.Tensor) -> None:
        try:
            model(input_ids=ids.to(device), use_cache=False)
        except _StopForward:
            return
        raise TrustError(f"{type(model).__name__}'s forward pass never reached its decoder blocks; "
                         "this architecture is not supported for calibrated compression")

    handles = [
        blk.register_forward_pre_hook(grab_kwargs(i), with_kwargs=True) for i, blk in enumerate(blocks)
    ]
    for blk in blocks:  # skipped while their kwargs are read: no block runs where the weights are kept
        blk.forward = skip
    try:
        forward(input_ids[:1])  # one window: per-block kwargs (same for all windows)
    finally:
        for blk in blocks:
            del blk.forward
        for handle in handles:
            handle.remove()
    if any(k is None for k in block_kwargs):
        raise TrustError(f"not every decoder block of {type(model).__name__} ran during calibration; "
                         "refusing a partial compression")
    handle = blocks[0].register_forward_pre_hook(grab_first, with_kwargs=True)
    try:
        for start in range(0, input_ids.shape[0], batch_size):
            forward(input_ids[start : start + batch_size])
    finally:
        handle.remove()
    return torch.cat(hidden), [k for k in block_kwargs if k is not None]


@torch.no_grad()
def run_layerwise(
    model: nn.Module,
    input_ids: torch.Tensor,
    compressor: BlockCompressor,
    on_block: Callable[[int, int], None] | None = None,
    accelerator: torch.device | None = None,
) -> RunStats:
    """Compress every decoder block of `model` in place with `compressor`, block by block.

    `input_ids`: (samples, seqlen) calibration windows. `accelerator`: where each block is
    compressed (None: where it is); every block goes back to its own device afterwards. Raises
    TrustError for a model whose blocks cannot be found or driven (never a silent partial
    compression).
    """
    start = time.perf_counter()
    blocks = find_blocks(model)
    samples, seqlen = input_ids.shape
    batch_size = max(1, TOKENS_PER_BATCH // seqlen)
    was_training = model.training
    model.eval()
    compute = getattr(compressor, "compute_dtype", None) or next(blocks[0].parameters()).dtype
    prefix = blocks_name(model)
    grids: dict[str, Grid] = {}
    try:
        inputs, kwargs = capture_block_inputs(model, blocks, input_ids, batch_size, compute)
        if accelerator is not None:
            inputs, kwargs = inputs.to(accelerator), _moved(kwargs, compute, accelerator)
        extra: dict[str, float] = {}
        for index, block in enumerate(blocks):
            first = next(block.parameters())
            dtype, home = first.dtype, first.device
            block.to(device=accelerator or home, dtype=compute)
            step = BlockStep(index, block, inputs, kwargs[index], batch_size, dtype)
            for key, value in compressor.compress_block(step).items():
                extra[key] = max(extra.get(key, value), value)
            grids.update({f"{prefix}.{index}.{name}": grid.to(home) for name, grid in step.grids.items()})
            if dtype != compute:
                block.to(dtype).to(compute)  # the re-run must see the stored (rounded) weights
            inputs = step.outputs()
            block.to(device=home, dtype=dtype)
            del step
            if on_block is not None:
                on_block(index, len(blocks))
    finally:
        model.train(was_training)
    return RunStats(len(blocks), samples, seqlen, time.perf_counter() - start, extra, grids)
