"""Hugging Face transformers backend: batched, length-sorted, KV-cached generation.

Prompts are sorted longest-first (an out-of-memory shows up in the first batch) and packed
into batches under a token budget, left-padded, and decoded with a KV cache. Each row stops
at EOS or at a stop string (once it has produced some non-blank text); the batch ends when
every row has stopped. Sampling uses one seeded generator per row, so an answer does not
depend on which batch it landed in.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Sequence
from typing import Any

import torch

from ..models.loading import LoadedModel
from .requests import GenerationSettings, OnGenerated, OnScored

MIN_SHARED_PREFIX = 32  # shorter shared prefixes are not worth a separate forward pass
# A separate group means an extra, smaller batch, and each decode step of a batch costs about
# as much as this many prompt tokens of prefill (CPU, batch <= 64). A group must save more.
DECODE_STEP_COST = 48


class HFBackend:
    def __init__(
        self, loaded: LoadedModel, max_batch_size: int | None = None,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.add_special_tokens = loaded.entry.chat_format.adds_special_tokens
        on_gpu = loaded.device.type == "cuda"
        # On a CPU, decoding is dominated by per-step overhead, so wide batches pay off even
        # though long padded prefills are a little slower per token.
        self.max_batch_size = max_batch_size or 64
        self.max_batch_tokens = max_batch_tokens or (32768 if on_gpu else 8192)
        self.eos_ids = _eos_ids(loaded)
        self.pad_id = self.tokenizer.pad_token_id
        params = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    # ----------------------------------------------------------------- generation
    def generate(
        self, prompts: Sequence[str], settings: GenerationSettings, seeds: Sequence[int],
        on_done: OnGenerated, needed: Collection[int] | None = None,
    ) -> None:
        encoded = [self._encode(p) for p in prompts]
        rows = [(i, s) for i in range(len(prompts)) for s in range(settings.num_samples)]
        pending: dict[int, list[str | None]] = {}
        wanted = set(range(len(prompts)) if needed is None else needed)
        for batch, prefix_len in self.plan(encoded, rows, settings.max_new_tokens):
            if not any(i in wanted for i, _ in batch):
                continue  # every answer of this batch is cached already
            texts = self._generate_batch(
                [encoded[i] for i, _ in batch], prefix_len, settings,
                [(seeds[i] * 1_000_003 + s) % (2**63 - 1) for i, s in batch],
            )
            for (i, s), text in zip(batch, texts):
                slot = pending.setdefault(i, [None] * settings.num_samples)
                slot[s] = text
                if all(t is not None for t in slot):
                    on_done(i, [t for t in slot if t is not None])
                    del pending[i]

    def plan(
        self, encoded: list[list[int]], rows: list[tuple[int, int]], new_tokens: int
    ) -> list[tuple[list[tuple[int, int]], int]]:
        """Batches of rows, each with the token prefix its rows share (0 = none).

        Rows are grouped by shared prefix (see `prefix_groups`): a group of few-shot prompts
        with the same preamble and demonstrations computes that prefix once per batch. Every
        other row goes to one pool. Inside each, rows are length-sorted longest-first and
        packed under the token budget, counting only the tokens a row computes itself. The
        plan depends only on the prompts, never on which of them are cached, so numerics do not
        depend on what was resumed.
        """
        groups, pool = prefix_groups(encoded, rows, new_tokens)
        planned: list[tuple[list[tuple[int, int]], int]] = []
        for members, prefix in groups:
            planned.extend((batch, prefix) for batch in self._pack(members, encoded, prefix, new_tokens))
        planned.extend((batch, 0) for batch in self._pack(pool, encoded, 0, new_tokens))
        planned.sort(key=lambda b: (-max(len(encoded[i]) for i, _ in b[0]), b[0][0]))
        return planned

    def _pack(
        self, rows: list[tuple[int, int]], encoded: list[list[int]], prefix: int, new_tokens: int
    ) -> list[list[tuple[int, int]]]:
        rows = sorted(rows, key=lambda r: (-len(encoded[r[0]]), r[0], r[1]))
        batches: list[list[tuple[int, int]]] = []
        current: list[tuple[int, int]] = []
        longest = 0
        for row in rows:
            own = len(encoded[row[0]]) - prefix
            width = max(longest, own) + new_tokens
            if current and (
                len(current) >= self.max_batch_size or width * (len(current) + 1) > self.max_batch_tokens
            ):
                batches.append(current)
                current, longest = [], 0
            current.append(row)
            longest = max(longest, own)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _prefill(self, token_lists: list[list[int]], prefix_len: int) -> tuple[Any, Any, Any, Any]:
        """Run the prompts through the model; returns (logits, cache, attention, last positions).

        Identical prompts in a batch (the samples of one prompt) are computed once and their
        cache rows repeated; a shared prefix is computed once and repeated likewise.
        """
        from transformers import DynamicCache

        unique: dict[tuple[int, ...], int] = {}
        rows_to_unique = [unique.setdefault(tuple(t), len(unique)) for t in token_lists]
        distinct = [list(t) for t in unique]
        cache = DynamicCache()
        batch = len(distinct)
        if prefix_len:
            shared = torch.tensor([distinct[0][:prefix_len]], device=self.device)
            self._forward(input_ids=shared, cache=cache, use_cache=True, logits_to_keep=1)
            cache.batch_repeat_interleave(batch)
            suffix_ids, suffix_mask = self._left_pad([t[prefix_len:] for t in distinct])
            attention = torch.cat([suffix_mask.new_ones((batch, prefix_len)), suffix_mask], dim=1)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, prefix_len:]
            input_ids = suffix_ids
        else:
            input_ids, attention = self._left_pad(distinct)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
        out = self._forward(
            input_ids=input_ids, attention_mask=attention, position_ids=positions,
            cache=cache, use_cache=True, logits_to_keep=1,
        )
        logits, last = out.logits[:, -1, :], positions[:, -1:]
        if len(distinct) < len(token_lists):
            index = torch.tensor(rows_to_unique, device=self.device)
            cache.batch_select_indices(index)
            logits, attention, last = logits[index], attention[index], last[index]
        return logits, cache, attention, last

    @torch.inference_mode()
    def _generate_batch(
        self, token_lists: list[list[int]], prefix_len: int, settings: GenerationSettings,
        seeds: list[int],
    ) -> list[str]:
        logits, cache, attention, last_pos = self._prefill(token_lists, prefix_len)
        batch = len(token_lists)
        generators = None
        if not settings.greedy:
            generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        generated: list[list[int]] = [[] for _ in range(batch)]
        live = list(range(batch))  # original row index of each row still decoding
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
        probs = torch.softmax(logits / settings.temperature, dim=-1).cpu()
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
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        body = text.lstrip()
        lead = text[: len(text) - len(body)]
        cut = min((body.find(s) for s in stop if s in body), default=-1)
        return lead + body[:cut] if cut >= 0 else text

    # ------------------------------------------------------------ log-likelihood
    @torch.inference_mode()
    def loglikelihood(self, pairs: Sequence[tuple[str, str]], on_done: OnScored) -> None:
        encoded = []
        for context, continuation in pairs:
            ctx = self._encode(context)
            cont = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
            encoded.append((ctx, cont))
        joined = [ctx + cont for ctx, cont in encoded]
        rows = [(i, 0) for i in range(len(pairs))]
        batches = [b for b, _ in self.plan(joined, rows, 0)]
        for batch in batches:
            full = [joined[i] for i, _ in batch]
            input_ids, attention = self._left_pad(full)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            logits = self._forward(
                input_ids=input_ids, attention_mask=attention, position_ids=positions
            ).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)
            width = input_ids.shape[1]
            for row, (i, _) in enumerate(batch):
                cont = encoded[i][1]
                n = len(cont)
                if n == 0:
                    on_done(i, (0.0, True))
                    continue
                # logits at position t predict token t+1; the continuation fills the last n slots
                slots = logprobs[row, width - n - 1 : width - 1]
                target = torch.tensor(cont, device=slots.device)
                total = float(slots.gather(-1, target[:, None]).sum())
                is_greedy = bool((slots.argmax(-1) == target).all())
                on_done(i, (total, is_greedy))

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


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for source in (loaded.tokenizer.eos_token_id, getattr(loaded.model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, (list, tuple)):
            ids.update(int(x) for x in source)
    return ids


Row = tuple[int, int]  # (prompt index, sample index)


def prefix_groups(
    encoded: list[list[int]], rows: list[Row], new_tokens: int = 20
) -> tuple[list[tuple[list[Row], int]], list[Row]]:
    """Split rows into groups that share a long token prefix, and a pool of the rest.

    A prefix tree over the prompts, cut where it pays: a subtree becomes its own group when
    its prompts share at least MIN_SHARED_PREFIX tokens (and that many more than its parent's
    prefix, where the parent's is long enough to share), and the prefill it saves with the rows
    its own subtrees left, prefix x (rows - 1), outweighs the decode steps of an extra batch,
    new_tokens x DECODE_STEP_COST. So a benchmark whose subjects each have their own five-shot
    preamble gets one group per subject (sharing the whole preamble), not one group sharing
    only the system prompt. Rows that fit no group fall back to the nearest group above them,
    or to the pool. Every row keeps at least one token of its own.
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
        pays = shared * (len(leftovers) - 1) >= new_tokens * DECODE_STEP_COST
        if shared >= MIN_SHARED_PREFIX and worth and pays:
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
