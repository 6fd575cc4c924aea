"""The second-order machinery GPTQ and SparseGPT share: calibration Hessians, their inverse, the lazy column sweep.

H = 2/n · X Xᵀ is accumulated over the calibration tokens, dampened by λ = damp · mean(diag H),
inverted through Cholesky and kept as the upper Cholesky factor of H⁻¹ (the form both
algorithms step through). What differs between the two methods is only what a column becomes
(a grid point, or zero) and when that is decided (`lazy_sweep`'s `look` and `target`).

Shared choices, departures from the references named as such:
- if the Cholesky factorisation fails, dampening is multiplied by 10 and retried (at most
  three times) before giving up with a TrustError;
- Linears that read the same input (q/k/v, gate/up) share one Hessian and are solved stacked
  (`solve_stacked`): both algorithms are row-independent given the Hessian, so this equals
  solving them one by one, at a fraction of the cost;
- the first token of every calibration window counts SINK_WEIGHT times in H (a departure
  from the references). That position becomes the attention sink, the token every head parks
  its attention on, so its value vector matters far beyond its share of tokens; with one sink
  per 512 tokens, plain GPTQ pushes the rounding error of the other tokens into it. Measured
  on SmolLM2-135M (4-bit, g128, 16 x 512 calibration): unweighted, v_proj's output error at
  position 0 was 170-380% vs RTN's 5-17%, and the model's held-out perplexity was worse than
  RTN's (25.3 vs 22.8) although every Linear's average error was 2-4x lower; weighted x128,
  the sink error drops below RTN's for +10% on the other tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from ..errors import TrustError
from .grid import Grid
from .runner import BlockStep, InputGroup

BLOCK_COLUMNS = 128  # lazy-batch width of the reference: updates outside the block are deferred
SUB_COLUMNS = 32  # inside a block, rank-1 updates stay within this many columns (see lazy_sweep)
SYMMETRIC_BLOCK = 384  # width of the Hessian blocks multiplied (see HessianAccumulator)
SINK_WEIGHT = 128.0  # weight of each calibration window's first token in H (see above)
DAMP_RETRIES = 3

# solve(stacked float32 weight, its Hessian, row slice of each Linear)
#   -> (new weight, damp used, the grid of the new weight's rows or None when not quantized);
# the solve owns both tensors (solve_stacked makes them for it) and may overwrite them.
StackedSolve = Callable[[torch.Tensor, torch.Tensor, list[tuple[int, int]]], tuple[torch.Tensor, float, "Grid | None"]]


@contextmanager
def column_sweep_threads(device: torch.device) -> Iterator[None]:
    """One intra-op thread on CPU while sweeping columns, restored afterwards.

    Each column step is a handful of tiny ops (a rank-1 update of <=32 x rows): threading
    them costs more in synchronisation than it saves, and when the cores are shared with
    another process it is pathological (measured 0.2 s single-threaded vs 1-12 s with two
    threads for one stacked q/k/v solve of SmolLM2).
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class HessianAccumulator:
    """Running H = 2/n Σ w·x xᵀ over calibration tokens (float32, in_features²), n = Σ w: every
    token weighs 1 except, with `seqlen` set, the first of each window, which weighs `sink`.

    Only the blocks on and above the diagonal (SYMMETRIC_BLOCK columns wide) are multiplied;
    the rest is mirrored once in `hessian()`. Same dot products as one full product (equal
    to the last bit in our checks), about a third less work for SmolLM2's 1536-wide down_proj.
    """

    def __init__(self, columns: int, device: torch.device, seqlen: int = 0, sink: float = 1.0) -> None:
        self.sum = torch.zeros(columns, columns, device=device)
        self.tokens = 0.0
        self.seqlen, self.sink = seqlen, sink
        self.blocks = [(start, min(start + SYMMETRIC_BLOCK, columns))
                       for start in range(0, columns, SYMMETRIC_BLOCK)]

    def add(self, x: torch.Tensor) -> None:
        weighted = x
        if self.seqlen and self.sink != 1.0:
            weights = torch.ones(x.shape[0], device=x.device)
            weights[:: self.seqlen] = self.sink  # x is (windows x seqlen) rows, window-major
            weighted = x * weights[:, None]
            self.tokens += float(weights.sum())
        else:
            self.tokens += x.shape[0]
        for index, (a0, a1) in enumerate(self.blocks):
            for b0, b1 in self.blocks[index:]:
                self.sum[a0:a1, b0:b1].addmm_(weighted[:, a0:a1].T, x[:, b0:b1])

    def hessian(self) -> torch.Tensor:
        full = self.sum.clone()
        for index, (a0, a1) in enumerate(self.blocks):
            for b0, b1 in self.blocks[index + 1 :]:
                full[b0:b1, a0:a1] = full[a0:a1, b0:b1].T
        return full.mul_(2.0 / max(self.tokens, 1))


def prepare_hessian(weight: torch.Tensor, hessian: torch.Tensor, copy: bool = True) -> torch.Tensor:
    """Dead inputs (never non-zero in calibration) get H_ii = 1 and their weights zeroed, as in
    the references: they cannot affect the calibration outputs, and a zero diagonal would make
    H singular. Modifies `weight` in place; returns the fixed copy of H (H itself, fixed in
    place, when not `copy`)."""
    if copy:
        hessian = hessian.clone()
    dead = torch.diag(hessian) == 0
    hessian[dead, dead] = 1
    weight[:, dead] = 0
    return hessian


def inverse_hessian_factor(hessian: torch.Tensor, damp: float) -> tuple[torch.Tensor, float]:
    """Upper Cholesky factor of (H + λI)⁻¹, λ = damp · mean(diag H); returns (factor, damp used).

    Retries with 10x the dampening when a factorisation fails (H can be near singular with
    few calibration tokens or strongly correlated inputs).
    """
    mean_diag = torch.diag(hessian).mean()
    current = damp
    # At most two in_features² matrices besides H are alive at once (70B's down_proj: 3.3 GB each).
    for _ in range(DAMP_RETRIES + 1):
        damped = hessian.clone()
        damped.diagonal().add_(current * mean_diag)
        lower, info = torch.linalg.cholesky_ex(damped)
        del damped
        if int(info) == 0:
            inverse = torch.cholesky_inverse(lower)
            del lower
            upper, info = torch.linalg.cholesky_ex(inverse, upper=True)
            del inverse
            if int(info) == 0:
                return upper, current
        current *= 10
    raise TrustError(f"the calibration Hessian stays singular even with dampening {current / 10:g}; "
                     "use more calibration samples (nsN) or a larger damp")


def lazy_sweep(
    weight: torch.Tensor, hinv: torch.Tensor, block: int, windows: dict[int, int],
    look: Callable[[int, torch.Tensor], None], target: Callable[[int, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The column sweep GPTQ and SparseGPT share; returns the new (rows x cols) weight.

    Column by column, `target(column, w)` gives the column's new values; the error is spread
    over the columns not yet visited through the upper factor `hinv` of H⁻¹. Updates are
    lazy, as in the references: within a block of `block` columns they are applied at once
    only inside a sub-block of SUB_COLUMNS columns, the rest of the block gets one product per
    sub-block, and later blocks one product per block (same maths, fewer passes over memory).
    The sweep runs on the transposed weight so that a column is one contiguous row, and writes
    each column's new values over its row once its error is taken (no second weight-sized buffer).

    `windows` maps a column to a width: on reaching that column, `look(column, view)` sees
    the (width x rows) transposed view of the columns from there, with every update from the
    current block's earlier columns applied to the columns inside the block (the grid fit of
    GPTQ's groups, SparseGPT's mask choice). Consumes `weight`.
    """
    wt = weight.T.contiguous()
    cols = wt.shape[0]
    for b1 in range(0, cols, block):
        b2 = min(b1 + block, cols)
        w_block, h_block = wt[b1:b2], hinv[b1:b2, b1:b2]
        errors = torch.empty_like(w_block)
        for s1, s2 in _sub_blocks(b1, b2, windows):
            for i in range(s1, s2):
                column = b1 + i
                if column in windows:
                    look(column, wt[column : column + windows[column]])
                w = w_block[i]
                q = target(column, w)
                err = torch.sub(w, q, out=errors[i]).div_(h_block[i, i])
                w.copy_(q)  # later updates touch later columns only
                if i + 1 < s2:
                    w_block[i + 1 : s2].addr_(h_block[i, i + 1 : s2], err, alpha=-1.0)
            if s2 < b2 - b1:
                w_block[s2:].addmm_(h_block[s1:s2, s2:].T, errors[s1:s2], alpha=-1.0)
        if b2 < cols:
            wt[b2:].addmm_(hinv[b1:b2, b2:].T, errors, alpha=-1.0)
    return wt.T


def _sub_blocks(b1: int, b2: int, windows: dict[int, int]) -> list[tuple[int, int]]:
    """Sub-blocks (block-local) of SUB_COLUMNS columns, split further where a window would
    otherwise see columns still missing updates of its own sub-block."""
    starts = set(range(0, b2 - b1, SUB_COLUMNS))
    for column in sorted(c for c in windows if b1 <= c < b2):
        i = column - b1
        following = min((s for s in starts if s > i), default=b2 - b1)
        if i not in starts and min(i + windows[column], b2 - b1) > following:
            starts.add(i)
    ordered = sorted(starts)
    return list(zip(ordered, ordered[1:] + [b2 - b1]))


def collect_hessians(step: BlockStep, sink: float = SINK_WEIGHT) -> dict[InputGroup, HessianAccumulator]:
    """Run the calibration data through the block, one Hessian per input group (each window's
    first token weighted `sink` times; 1 = the references' unweighted Hessian)."""
    hessians: dict[InputGroup, HessianAccumulator] = {}

    def observe(group: InputGroup, x: torch.Tensor) -> None:
        if group not in hessians:
            hessians[group] = HessianAccumulator(x.shape[1], x.device, step.inputs.shape[1], sink)
        hessians[group].add(x)

    step.observe_inputs(observe)
    return hessians


def write_stacked(linears: list[torch.nn.Linear], stacked: torch.Tensor) -> None:
    """Split a row-stacked solution back into the Linears it came from."""
    offset = 0
    for linear in linears:
        rows = linear.weight.shape[0]
        linear.weight.data.copy_(stacked[offset : offset + rows].to(linear.weight.dtype))
        offset += rows


def solve_stacked(step: BlockStep, damp: float, solve: StackedSolve, sink: float = SINK_WEIGHT) -> dict[str, float]:
    """One block step of a Hessian method: one Hessian per input group, then per group one
    `solve` of its Linears stacked by rows; returns the block's stats ({"damp_max": ...})."""
    hessians = collect_hessians(step, sink)
    used_max = damp
    for group in step.input_groups:
        linears = [step.linears[name] for name in group.names]
        slices, offset = [], 0
        for linear in linears:
            slices.append((offset, offset + linear.weight.shape[0]))
            offset += linear.weight.shape[0]
        stacked = torch.cat([lin.weight.data.float() for lin in linears])
        # each accumulator is dropped once its Hessian is made: one in_features² sum alive, not four
        solved, used, grid = solve(stacked, hessians.pop(group).hessian(), slices)
        used_max = max(used_max, used)
        write_stacked(linears, solved)
        if grid is not None:
            for name, (start, end) in zip(group.names, slices, strict=True):
                step.grids[name] = grid.rows(start, end)
    return {"damp_max": used_max}
