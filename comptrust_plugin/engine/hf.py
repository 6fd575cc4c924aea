"""Hugging Face transformers backend: batched, length-sorted, KV-cached generation.

Prompts are sorted longest-first (an out-of-memory shows up in the first batch) and packed
into batches under a token budget, left-padded, and decoded with a KV cache. Prompts sharing
a long prefix (a few-shot preamble) compute it once per batch; one batch can hold several
such groups and loose prompts, so grouping never costs an extra decode loop. Within a batch,
prefixes and prompts' own tokens of unlike lengths run in separate passes (`passes`) rather
than padded to the longest, and the KV cache (`kvcache.ReservedCache`) has room for the new
tokens, so decoding writes in place instead of copying the cache every step. Each row stops
at EOS or at a stop string (once it has produced some non-blank text); the batch ends when
every row has stopped. Sampling uses one seeded generator per row, so an answer does not
depend on which batch it landed in.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Sequence
from typing import Any

import torch
from transformers import DynamicCache

from ..models.loading import LoadedModel
from .kvcache import ReservedCache
from .requests import GenerationSettings, OnGenerated, OnScored, finish_text

MIN_SHARED_PREFIX = 16  # shorter shared prefixes are not worth a place in the prefix pass
# The fixed cost of one more forward pass, in tokens of compute: prefixes or suffixes of unlike
# lengths run in separate passes where the padding they save exceeds this.
PASS_OVERHEAD_TOKENS = 64
# Token slots one batch may hold (--trust-batch-tokens overrides; lower it after a GPU OOM).
DEFAULT_BATCH_TOKENS = {"cuda": 32768, "cpu": 8192}

Row = tuple[int, int]  # (prompt index, sample index)


class HFBackend:
    def __init__(
        self, loaded: LoadedModel, max_batch_size: int | None = None,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.add_special_tokens = loaded.entry.chat_format.adds_special_tokens
        # On a CPU, decoding is dominated by per-step overhead, so wide batches pay off even
        # though long padded prefills are a little slower per token.
        self.max_batch_size = max_batch_size or 64
        self.max_batch_tokens = max_batch_tokens or default_batch_tokens(loaded.device.type)
        self.eos_ids = _eos_ids(loaded)
        self.pad_id = self.tokenizer.pad_token_id
        params = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        use_grouped_cpu_attention(self.model)

    # ----------------------------------------------------------------- generation
    def generate(
        self, prompts: Sequence[str], settings: GenerationSettings, seeds: Sequence[int],
        on_done: OnGenerated, needed: Collection[int] | None = None,
    ) -> None:
        encoded = [self._encode(p) for p in prompts]
        rows = [(i, s) for i in range(len(prompts)) for s in range(settings.num_samples)]
        pending: dict[int, list[str | None]] = {}
        wanted = set(range(len(prompts)) if needed is None else needed)
        for planned in self.plan(encoded, rows, settings.max_new_tokens):
            batch = [row for row, _ in planned]
            if not any(i in wanted for i, _ in batch):
                continue  # every answer of this batch is cached already
            texts = self._generate_batch(
                [encoded[i] for i, _ in batch], [prefix for _, prefix in planned], settings,
                [(seeds[i] * 1_000_003 + s) % (2**63 - 1) for i, s in batch],
            )
            for (i, s), text in zip(batch, texts):
                slot = pending.setdefault(i, [None] * settings.num_samples)
                slot[s] = text
                if all(t is not None for t in slot):
                    on_done(i, [t for t in slot if t is not None])
                    del pending[i]

    def plan(
        self, encoded: list[list[int]], rows: list[Row], new_tokens: int, share: bool = True
    ) -> list[list[tuple[Row, int]]]:
        """Batches of (row, shared prefix length) pairs; 0 = the row shares nothing.

        Rows are grouped by shared prefix (see `prefix_groups`): a group of few-shot prompts
        with the same preamble and demonstrations computes that prefix once per batch. A batch
        may hold several groups and loose rows: their prefixes run as one left-padded pass, then
        every row's own tokens. Units (a group, or a loose row) are sorted by the own tokens of
        their longest row, then by prefix length, longest first, so rows with like lengths share
        a batch, and packed under the token budget (see `_cost`). The plan depends only on the
        prompts, never on which of them are cached, so numerics do not depend on what was resumed.
        """
        groups, pool = prefix_groups(encoded, rows) if share else ([], list(rows))
        units = groups + [([row], 0) for row in pool]

        def own(row: Row, prefix: int) -> int:
            return len(encoded[row[0]]) - prefix

        units.sort(key=lambda u: (-max(own(r, u[1]) for r in u[0]), -u[1], min(u[0])))
        batches: list[list[tuple[Row, int]]] = []
        current: list[tuple[Row, int]] = []
        # `_cost` of the open batch, kept incrementally (one prefix per unit: units are disjoint
        # subtrees of the prefix tree), so planning stays linear in the rows
        heads: set[int] = set()
        longest_head = longest_own = 0
        for unit, (members, prefix) in enumerate(units):
            for row in sorted(members, key=lambda r: (-own(r, prefix), r)):
                with_row = (
                    (len(heads | ({unit} if prefix else set()))) * max(longest_head, prefix)
                    + (len(current) + 1) * (max(longest_own, own(row, prefix)) + new_tokens)
                )
                if current and (len(current) >= self.max_batch_size or with_row > self.max_batch_tokens):
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

    @torch.inference_mode()
    def _prefill(
        self, token_lists: list[list[int]], prefixes: list[int], keep: int = 1, reserve: int = 0
    ) -> tuple[Any, Any, Any, Any, list[int]]:
        """Run the prompts through the model; returns (logits of the last `keep` positions,
        cache, attention, last positions, rows): result row k is prompt `rows[k]` (results come
        in the order they were computed: reordering them would copy the whole cache). The
        cache has room for `reserve` more positions.

        Identical prompts in a batch (the samples of one prompt) are computed once and their
        cache rows repeated. The distinct prefixes ("heads": a shared few-shot preamble, or a
        row's first token where it shares nothing) run first, left-padded (heads of very
        different lengths in separate passes), their cache rows are repeated to the rows using
        them, and then each row's own tokens ("suffix") follow, longest first, in passes of like
        length (see `passes`) so that a short suffix is not padded to the longest one. The cache
        stays one left-padded block: a shorter pass writes its keys and values right-aligned.
        """
        unique: dict[tuple[int, ...], int] = {}
        rows_to_unique = [unique.setdefault(tuple(t), len(unique)) for t in token_lists]
        prompts = [list(t) for t in unique]
        cut_of = [0] * len(prompts)
        for row, u in enumerate(rows_to_unique):
            cut_of[u] = prefixes[row] or 1
        if any(len(p) - c < keep for p, c in zip(prompts, cut_of)):
            # a suffix too short for the positions read (a one-token prompt): one plain pass
            cache = ReservedCache(reserve)
            input_ids, attention = self._left_pad(prompts)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            out = self._forward(
                input_ids=input_ids, attention_mask=attention, position_ids=positions,
                cache=cache, use_cache=True, logits_to_keep=keep,
            )
            return self._per_row(rows_to_unique, list(range(len(prompts))), out.logits[:, -keep:, :], cache,
                                 attention, positions[:, -1:])
        # distinct prompts, longest suffix first: each suffix pass is a run of rows
        order = sorted(range(len(prompts)), key=lambda u: (-(len(prompts[u]) - cut_of[u]), u))
        distinct, cuts = [prompts[u] for u in order], [cut_of[u] for u in order]
        heads: dict[tuple[int, ...], int] = {}
        head_of = [heads.setdefault(tuple(t[:c]), len(heads)) for t, c in zip(distinct, cuts)]
        suffixes = [t[c:] for t, c in zip(distinct, cuts)]
        width = len(suffixes[0])
        cache = ReservedCache(width + reserve)
        head_mask = self._run_heads([list(h) for h in heads], cache)
        index = torch.tensor(head_of, device=self.device)
        cache.batch_select_indices(index)
        suffix_ids, suffix_mask = self._left_pad(suffixes)
        attention = torch.cat([head_mask[index], suffix_mask], dim=1)
        before = head_mask.shape[1]  # cache positions before the suffixes
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, before:]
        logits = []
        first = 0
        # a pass is at least `keep` wide: the log-likelihood positions lie in the suffix
        for members in passes([max(len(s), keep) for s in suffixes], PASS_OVERHEAD_TOKENS):
            assert members == list(range(first, first + len(members)))  # runs of the sorted rows
            rows = slice(first, first + len(members))
            first += len(members)
            skip = width - min(width, max(max(len(suffixes[i]), keep) for i in members))
            out = self._forward(
                input_ids=suffix_ids[rows, skip:], attention_mask=attention[rows],
                position_ids=positions[rows, skip:], cache=cache.window(rows, before + skip, before),
                use_cache=True, logits_to_keep=keep,
            )
            logits.append(out.logits[:, -keep:, :])
        cache.extend_to(before + width)
        return self._per_row(rows_to_unique, order, torch.cat(logits), cache, attention, positions[:, -1:])

    def _per_row(
        self, rows_to_unique: list[int], order: list[int], logits: Any, cache: Any, attention: Any, last: Any,
    ) -> tuple[Any, Any, Any, Any, list[int]]:
        """Results computed for the distinct prompts in `order`, repeated to the rows that share
        a prompt (samples), in computed order; the last item names each result's row."""
        where = {u: i for i, u in enumerate(order)}
        rows = sorted(range(len(rows_to_unique)), key=lambda r: (where[rows_to_unique[r]], r))
        index_list = [where[rows_to_unique[r]] for r in rows]
        if index_list != list(range(len(order))):  # only where prompts repeat
            index = torch.tensor(index_list, device=self.device)
            cache.batch_select_indices(index)
            logits, attention, last = logits[index], attention[index], last[index]
        return logits, cache, attention, last, rows

    def _run_heads(self, heads: list[list[int]], cache: Any) -> torch.Tensor:
        """Fill `cache` with the heads, left-padded to the longest; returns their mask.

        Heads of like length run as one pass. A much shorter head (a zero-shot system prompt
        beside a few-shot preamble) runs in its own pass rather than padded to the long one,
        and its keys and values are placed right-aligned in the padded cache (the padding is
        masked, as in a single pass)."""
        ids, mask = self._left_pad(heads)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        runs = passes([len(h) for h in heads], PASS_OVERHEAD_TOKENS)
        if len(runs) == 1:
            self._forward(
                input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                use_cache=True, logits_to_keep=1,
            )
            return mask
        width = ids.shape[1]
        parts = []
        for members in runs:
            part = DynamicCache()
            narrow = max(len(heads[h]) for h in members)
            rows = torch.tensor(members, device=self.device)
            self._forward(
                input_ids=ids[rows, width - narrow :], attention_mask=mask[rows, width - narrow :],
                position_ids=positions[rows, width - narrow :], cache=part, use_cache=True, logits_to_keep=1,
            )
            parts.append((rows, narrow, part))
        for layer in range(len(parts[0][2].layers)):
            states = []
            for kind in ("keys", "values"):
                first = getattr(parts[0][2].layers[layer], kind)
                full = first.new_zeros((len(heads), first.shape[1], width, first.shape[-1]))
                for rows, narrow, part in parts:
                    full[rows, :, width - narrow :] = getattr(part.layers[layer], kind)
                states.append(full)
            cache.update(*states, layer)
        return mask

    @torch.inference_mode()
    def _generate_batch(
        self, token_lists: list[list[int]], prefixes: list[int], settings: GenerationSettings,
        seeds: list[int],
    ) -> list[str]:
        logits, cache, attention, last_pos, live = self._prefill(
            token_lists, prefixes, reserve=settings.max_new_tokens
        )  # live: the original row index of each row still decoding
        logits = logits[:, -1, :]
        generators = None
        if not settings.greedy:
            generators = [torch.Generator(device="cpu").manual_seed(seeds[row]) for row in live]
        generated: list[list[int]] = [[] for _ in range(len(token_lists))]
        for _step in range(settings.max_new_tokens):
            picks = self._pick(logits.float(), settings, generators)
            keep: list[int] = []
            for slot, row in enumerate(live):
                token = int(picks[slot])
                if token in self.eos_ids:
                    continue
                generated[row].append(token)
                if settings.stop and self._hit_stop(generated[row], settings.stop):
                    continue
                keep.append(slot)
            if not keep or _step == settings.max_new_tokens - 1:
                break
            if len(keep) < len(live):  # drop finished rows from every per-row tensor
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                attention, last_pos, picks = attention[index], last_pos[index], picks[keep]
                if generators is not None:
                    generators = [generators[k] for k in keep]
                live = [live[k] for k in keep]
            attention = torch.cat([attention, attention.new_ones((len(live), 1))], dim=1)
            last_pos = last_pos + 1
            out = self._forward(
                input_ids=picks.view(-1, 1).to(self.device), attention_mask=attention,
                position_ids=last_pos, cache=cache, use_cache=True,
            )
            logits = out.logits[:, -1, :]
        return [self._finish(tokens, settings.stop) for tokens in generated]

    def _forward(self, cache: Any = None, **kwargs: Any) -> Any:
        """One model call; transformers renamed `past_key_values` to `cache` in 5.x."""
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        return self.model(**kwargs)

    def _pick(
        self, logits: torch.Tensor, settings: GenerationSettings,
        generators: list[torch.Generator] | None,
    ) -> torch.Tensor:
        if generators is None:
            return logits.argmax(dim=-1).cpu()
        scaled = logits if settings.temperature == 1.0 else logits / settings.temperature  # x / 1.0 == x
        probs = torch.softmax(scaled, dim=-1).cpu()
        if settings.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            keep = sorted_probs.cumsum(-1) - sorted_probs < settings.top_p
            sorted_probs = sorted_probs * keep
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        # Inverse-CDF sampling, one uniform draw per row from that row's own generator: exact,
        # batch-independent, and ~100x cheaper on a CPU than a multinomial call per row.
        # requests.SAMPLING_SCHEME names this scheme in the cache keys: change both together.
        cdf = probs.cumsum(dim=-1)
        draws = torch.stack([torch.rand((), generator=g) for g in generators]) * cdf[:, -1]
        return torch.searchsorted(cdf, draws[:, None], right=True).squeeze(1).clamp(max=probs.shape[-1] - 1)

    def _hit_stop(self, tokens: list[int], stop: tuple[str, ...]) -> bool:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).lstrip()
        return any(s in text for s in stop)

    def _finish(self, tokens: list[int], stop: tuple[str, ...]) -> str:
        return finish_text(self.tokenizer.decode(tokens, skip_special_tokens=True), stop)

    # ------------------------------------------------------------ log-likelihood
    @torch.inference_mode()
    def loglikelihood(self, pairs: Sequence[tuple[str, str]], on_done: OnScored) -> None:
        """Sum of log-probabilities of each continuation after its context (and whether it is
        the greedy continuation).

        Work is shared where the answer does not depend on it: requests whose continuation is
        one token read it from one pass over their common context (the options of a multiple
        choice question: one row, not four); rows sharing a long prefix (a few-shot preamble)
        compute it once per batch, as generation does. A row's shared cut stays before the
        positions whose logits it needs.
        """
        units: dict[tuple[int, ...], int] = {}  # token row -> index in `rows`
        rows: list[list[int]] = []
        spans: list[int] = []  # positions needed at the end of each row
        reads: list[tuple[int, list[int]]] = []  # per request: (row, continuation tokens)
        for context, continuation in pairs:
            ctx = self._encode(context)
            cont = list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
            # one-token continuations are read at the context's last position; longer ones need
            # their own row, whose last len(cont) + 1 positions score them
            tokens, span = (ctx, 1) if len(cont) == 1 and ctx else (ctx + cont, len(cont) + 1)
            key = (*tokens, -span)
            if key not in units:
                units[key] = len(rows)
                rows.append(tokens)
                spans.append(span)
            reads.append((units[key], cont))
        by_row: dict[int, list[int]] = {}
        for request, (row, _) in enumerate(reads):
            by_row.setdefault(row, []).append(request)
        for planned in self.plan(rows, [(r, 0) for r in range(len(rows))], 0):
            batch = [r for (r, _), _ in planned]
            cuts = [min(prefix, len(rows[r]) - spans[r]) for (r, _), prefix in planned]
            if min(len(rows[r]) for r in batch) < 2 or min(cuts) < 0:
                cuts = [0] * len(batch)  # a shared pass would take a row's only scoring position
            keep = max(spans[r] for r in batch)
            logits, _, _, _, order = self._prefill([rows[r] for r in batch], cuts, keep=keep)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for position, r in enumerate(batch[k] for k in order):
                for request in by_row[r]:
                    cont = reads[request][1]
                    n = len(cont)
                    if n == 0:
                        on_done(request, (0.0, True))
                        continue
                    # logits at position t predict token t+1
                    end = keep if spans[r] == 1 else keep - 1
                    slots = logprobs[position, end - n : end]
                    target = torch.tensor(cont, device=slots.device)
                    total = float(slots.gather(-1, target[:, None]).sum())
                    is_greedy = bool((slots.argmax(-1) == target).all())
                    on_done(request, (total, is_greedy))

    # ------------------------------------------------------------------- helpers
    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=self.add_special_tokens)["input_ids"])

    def _left_pad(self, token_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(t) for t in token_lists)
        ids = torch.full((len(token_lists), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(token_lists), width), dtype=torch.long)
        for row, tokens in enumerate(token_lists):
            if tokens:
                ids[row, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
                mask[row, width - len(tokens) :] = 1
        return ids.to(self.device), mask.to(self.device)


GROUPED_CPU_ATTENTION = "comptrust_cpu_gqa_sdpa"


def _grouped_cpu_sdpa(
    module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except that a multi-token pass of a grouped-query model on
    a CPU gives the grouped key/value heads to torch as they are (`enable_gqa`) instead of
    repeating them for every query head: transformers does that only on CUDA without a mask,
    but torch's CPU kernels take a mask too. Same results (equal in float32 in our checks),
    half the attention time of a shared-prefix prefill here."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    plain = (kwargs.get("position_bias") is None and kwargs.get("softcap") is None
             and not kwargs.get("output_attentions", False) and not kwargs.get("dropout"))
    if query.device.type != "cpu" or groups == 1 or query.shape[2] == 1 or attention_mask is None or not plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, scale=kwargs.get("scaling"), enable_gqa=True,
    )
    return output.transpose(1, 2).contiguous(), None


def use_grouped_cpu_attention(model: Any) -> None:
    """Switch a CPU model that uses transformers' SDPA attention to `_grouped_cpu_sdpa`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return
    if next(model.parameters()).device.type != "cpu":
        return
    AttentionInterface.register(GROUPED_CPU_ATTENTION, _grouped_cpu_sdpa)
    AttentionMaskInterface.register(GROUPED_CPU_ATTENTION, sdpa_mask)  # the masks SDPA gets
    model.set_attn_implementation(GROUPED_CPU_ATTENTION)


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


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for source in (loaded.tokenizer.eos_token_id, getattr(loaded.model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, (list, tuple)):
            ids.update(int(x) for x in source)
    return ids


def _cost(batch: list[tuple[Row, int]], encoded: list[list[int]], new_tokens: int) -> int:
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
        shared = min(_common_prefix(prompts), min(len(p) for p in prompts) - 1)
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


def _common_prefix(token_lists: list[list[int]]) -> int:
    first = token_lists[0]
    length = min(len(t) for t in token_lists)
    for tokens in token_lists[1:]:
        i = 0
        while i < length and tokens[i] == first[i]:
            i += 1
        length = i
    return length
