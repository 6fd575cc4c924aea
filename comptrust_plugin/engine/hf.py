"""Hugging Face transformers backend: batched, KV-cached generation and scoring of planned batches.

Batches come from the shared planner (`batching`): prompts sorted longest-first (an
out-of-memory shows up in the first batch) and packed under a token budget, left-padded, and
decoded with a KV cache. Prompts sharing a long prefix (a few-shot preamble) compute it once per
batch; one batch can hold several such groups and loose prompts, so grouping never costs an
extra decode loop. Within a batch, prefixes and prompts' own tokens of unlike lengths run in
separate passes (`batching.passes`) rather than padded to the longest, and the KV cache
(`kvcache.ReservedCache`) has room for the new tokens, so decoding writes in place instead of
copying the cache every step. Each row stops at EOS or at a stop string (once it has produced
some non-blank text); the batch ends when every row has stopped. Sampling uses one seeded
generator per row, so an answer does not depend on which batch it landed in.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Sequence
from typing import Any

import torch
from transformers import DynamicCache

from ..models.loading import LoadedModel
from . import batching
from .batching import Batch, Row, default_batch_tokens, passes, plan_batches
from .kvcache import ReservedCache
from .requests import GenerationSettings, OnGenerated, OnScored, finish_text


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
    ) -> list[Batch]:
        """Batches of (row, shared prefix length) pairs under this backend's limits (see batching)."""
        return plan_batches(encoded, rows, new_tokens, self.max_batch_size, self.max_batch_tokens, share)

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
        for members in passes([max(len(s), keep) for s in suffixes], batching.PASS_OVERHEAD_TOKENS):
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
            logits, attention, last = logits[index.to(logits.device)], attention[index], last[index]
        return logits, cache, attention, last, rows

    def _run_heads(self, heads: list[list[int]], cache: Any) -> torch.Tensor:
        """Fill `cache` with the heads, left-padded to the longest; returns their mask.

        Heads of like length run as one pass. A much shorter head (a zero-shot system prompt
        beside a few-shot preamble) runs in its own pass rather than padded to the long one,
        and its keys and values are placed right-aligned in the padded cache (the padding is
        masked, as in a single pass)."""
        ids, mask = self._left_pad(heads)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        runs = passes([len(h) for h in heads], batching.PASS_OVERHEAD_TOKENS)
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
                    full[rows.to(full.device), :, width - narrow :] = getattr(part.layers[layer], kind)
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


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for source in (loaded.tokenizer.eos_token_id, getattr(loaded.model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, (list, tuple)):
            ids.update(int(x) for x in source)
    return ids
