"""Batch planning shared by the backends: which rows run together, sharing which prefix, in which forward passes.

Contract (pure functions of token ids: no model, no torch, no cache):
- A *row* is (prompt index, sample index); `encoded[i]` holds prompt i's token ids. A row decodes
  `new_tokens` tokens (0 when only scoring a prompt).
- `plan_batches` returns batches, each a list of (row, shared prefix length); every row given
  appears in exactly one batch, exactly once. A prefix length p > 0 means the row's first p
  tokens equal those of the other rows of its group in that batch and are computed once for
  them; 0 means the row shares nothing. A row always keeps at least one token of its own.
- A batch holds at most `max_batch_size` rows, and its `batch_cost` (token slots computed and
  held) stays within `max_batch_tokens` unless it is a single row.
- The plan is deterministic and depends only on the prompts, rows and limits, never on which
  answers are cached, so an answer's numerics do not depend on what a resumed run skips.
- `passes` splits one batch's prefixes, or its rows' own tokens, into forward passes padded
  to their longest item, where the padding saved exceeds PASS_OVERHEAD_TOKENS per pass.
Backends read the module's constants at call time (tests and benchmarks may change them).
"""

from __future__ import annotations

MIN_SHARED_PREFIX = 16  # shorter shared prefixes are not worth a place in the prefix pass
# The fixed cost of one more forward pass, in tokens of compute: prefixes or suffixes of unlike
# lengths run in separate passes where the padding they save exceeds this.
PASS_OVERHEAD_TOKENS = 64
# Token slots one batch may hold (--trust-batch-tokens overrides; lower it after a GPU OOM).
DEFAULT_BATCH_TOKENS = {"cuda": 32768, "cpu": 8192}

Row = tuple[int, int]  # (prompt index, sample index)
Batch = list[tuple[Row, int]]  # (row, shared prefix length) pairs


def default_batch_tokens(device_type: str) -> int:
    """The batch budget when --trust-batch-tokens is not given (any non-CUDA device: the CPU one)."""
    return DEFAULT_BATCH_TOKENS["cuda" if device_type == "cuda" else "cpu"]


def passes(lengths: list[int], overhead: int) -> list[list[int]]:
    """Split items (by index) into forward passes, each padded to its longest item: longest
    first, and the split that minimizes the padded tokens plus `overhead` tokens per pass (the
    fixed cost of a pass). Each pass is a run of the items in (-length, index) order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    best = [0] + [float("inf")] * len(order)
    start = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        for begin in range(end):  # last pass = order[begin:end], padded to its first item
            cost = best[begin] + (end - begin) * lengths[order[begin]] + overhead
            if cost < best[end]:
                best[end], start[end] = cost, begin
    runs: list[list[int]] = []
    end = len(order)
    while end > 0:
        runs.append(order[start[end] : end])
        end = start[end]
    return runs[::-1]


def plan_batches(
    encoded: list[list[int]], rows: list[Row], new_tokens: int, max_batch_size: int, max_batch_tokens: int,
    share: bool = True,
) -> list[Batch]:
    """Batches of (row, shared prefix length) pairs; 0 = the row shares nothing (see the contract above).

    Rows are grouped by shared prefix (see `prefix_groups`; `share=False`: no groups): a group of
    few-shot prompts with the same preamble and demonstrations computes that prefix once per
    batch. A batch may hold several groups and loose rows: their prefixes run as one left-padded
    pass, then every row's own tokens. Units (a group, or a loose row) are sorted by the own
    tokens of their longest row, then by prefix length, longest first, so rows with like lengths
    share a batch, and packed under `max_batch_size` rows and `max_batch_tokens` (see
    `batch_cost`). The plan depends only on the prompts, never on which of them are cached, so
    numerics do not depend on what was resumed.
    """
    groups, pool = prefix_groups(encoded, rows) if share else ([], list(rows))
    units = groups + [([row], 0) for row in pool]

    def own(row: Row, prefix: int) -> int:
        return len(encoded[row[0]]) - prefix

    units.sort(key=lambda u: (-max(own(r, u[1]) for r in u[0]), -u[1], min(u[0])))
    batches: list[Batch] = []
    current: Batch = []
    # `batch_cost` of the open batch, kept incrementally (one prefix per unit: units are disjoint
    # subtrees of the prefix tree), so planning stays linear in the rows
    heads: set[int] = set()
    longest_head = longest_own = 0
    for unit, (members, prefix) in enumerate(units):
        for row in sorted(members, key=lambda r: (-own(r, prefix), r)):
            with_row = (
                (len(heads | ({unit} if prefix else set()))) * max(longest_head, prefix)
                + (len(current) + 1) * (max(longest_own, own(row, prefix)) + new_tokens)
            )
            if current and (len(current) >= max_batch_size or with_row > max_batch_tokens):
                batches.append(current)
                current, heads, longest_head, longest_own = [], set(), 0, 0
            current.append((row, prefix))
            if prefix:
                heads.add(unit)
                longest_head = max(longest_head, prefix)
            longest_own = max(longest_own, own(row, prefix))
    if current:
        batches.append(current)
    return batches


def batch_cost(batch: Batch, encoded: list[list[int]], new_tokens: int) -> int:
    """Token slots a batch computes and holds: its distinct prefixes, padded to the longest, then
    every row's own tokens padded to the longest plus the new tokens it decodes."""
    heads = {tuple(encoded[i][:prefix]) for (i, _), prefix in batch if prefix}
    longest_head = max((len(h) for h in heads), default=0)
    longest_own = max(len(encoded[i]) - prefix for (i, _), prefix in batch)
    return len(heads) * longest_head + len(batch) * (longest_own + new_tokens)


def prefix_groups(
    encoded: list[list[int]], rows: list[Row]
) -> tuple[list[tuple[list[Row], int]], list[Row]]:
    """Split rows into groups that share a long token prefix, and a pool of the rest.

    A prefix tree over the prompts: a subtree becomes its own group when at least two distinct
    prompts are left in it that share at least MIN_SHARED_PREFIX tokens, and that many more
    than its parent's prefix where the parent's is long enough to share (else they batch as
    well one level up). So a benchmark whose subjects each have their own five-shot preamble
    gets one group per subject (sharing the whole preamble), not one group sharing only the
    system prompt. Rows that fit no group fall back to the nearest group above them, or to
    the pool. Every row keeps at least one token of its own. Groups cost no extra batch: a
    batch computes several groups' prefixes in one pass.
    """
    groups: list[tuple[list[Row], int]] = []

    def visit(members: list[Row], parent: int) -> list[Row]:
        """Group what pays in this subtree; return the rows left for the levels above."""
        prompts = [encoded[i] for i, _ in members]
        if len({i for i, _ in members}) < 2:
            return members
        shared = min(common_prefix(prompts), min(len(p) for p in prompts) - 1)
        children: dict[int, list[Row]] = {}
        for row in members:
            children.setdefault(encoded[row[0]][shared], []).append(row)
        leftovers: list[Row] = []
        if len(children) == 1:  # a prompt that is a prefix of the others: nothing to split
            leftovers = members
        else:
            for child in children.values():
                leftovers += visit(child, shared)
        # A node worth its own group: a long enough prefix, enough rows, and clearly more shared
        # than its parent's prefix (else the rows batch better together one level up).
        distinct = len({i for i, _ in leftovers})
        worth = (parent < MIN_SHARED_PREFIX or shared - parent >= MIN_SHARED_PREFIX) and distinct >= 2
        if shared >= MIN_SHARED_PREFIX and worth:
            groups.append((leftovers, shared))
            return []
        return leftovers

    pool = visit(list(rows), 0) if rows else []
    return groups, pool


def common_prefix(token_lists: list[list[int]]) -> int:
    """How many leading tokens all the lists share."""
    first = token_lists[0]
    length = min(len(t) for t in token_lists)
    for tokens in token_lists[1:]:
        i = 0
        while i < length and tokens[i] == first[i]:
            i += 1
        length = i
    return length
