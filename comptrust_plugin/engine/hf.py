"""Hugging Face transformers backend: batched, length-sorted, KV-cached generation.

Prompts are sorted longest-first (an out-of-memory shows up in the first batch) and packed
into batches under a token budget, left-padded, and decoded with a KV cache. Each row stops
at EOS or at a stop string (once it has produced some non-blank text); the batch ends when
every row has stopped. Sampling uses one seeded generator per row, so an answer does not
depend on which batch it landed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..models.loading import LoadedModel
from .requests import GenerationSettings, OnGenerated, OnScored


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
        self.max_batch_size = max_batch_size or (64 if on_gpu else 32)
        self.max_batch_tokens = max_batch_tokens or (32768 if on_gpu else 3072)
        self.eos_ids = _eos_ids(loaded)
        self.pad_id = self.tokenizer.pad_token_id

    # ----------------------------------------------------------------- generation
    def generate(
        self, prompts: Sequence[str], settings: GenerationSettings, seeds: Sequence[int],
        on_done: OnGenerated,
    ) -> None:
        encoded = [self._encode(p) for p in prompts]
        rows = [(i, s) for i in range(len(prompts)) for s in range(settings.num_samples)]
        rows.sort(key=lambda r: (-len(encoded[r[0]]), r[0], r[1]))
        pending: dict[int, list[str | None]] = {}
        for batch in self._batches(rows, [len(encoded[i]) for i, _ in rows], settings):
            texts = self._generate_batch(
                [encoded[i] for i, _ in batch], settings,
                [seeds[i] * 1_000_003 + s for i, s in batch],
            )
            for (i, s), text in zip(batch, texts):
                slot = pending.setdefault(i, [None] * settings.num_samples)
                slot[s] = text
                if all(t is not None for t in slot):
                    on_done(i, [t for t in slot if t is not None])
                    del pending[i]

    def _batches(
        self, rows: list[tuple[int, int]], lengths: list[int], settings: GenerationSettings
    ) -> list[list[tuple[int, int]]]:
        batches: list[list[tuple[int, int]]] = []
        current: list[tuple[int, int]] = []
        longest = 0
        for row, length in zip(rows, lengths):
            width = max(longest, length) + settings.max_new_tokens
            if current and (
                len(current) >= self.max_batch_size or width * (len(current) + 1) > self.max_batch_tokens
            ):
                batches.append(current)
                current, longest = [], 0
            current.append(row)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _generate_batch(
        self, token_lists: list[list[int]], settings: GenerationSettings, seeds: list[int]
    ) -> list[str]:
        from transformers import DynamicCache

        input_ids, attention = self._left_pad(token_lists)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = self.model(
            input_ids=input_ids, attention_mask=attention, position_ids=positions,
            past_key_values=cache, use_cache=True, logits_to_keep=1,
        )
        batch = len(token_lists)
        generators = None
        if not settings.greedy:
            generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        generated: list[list[int]] = [[] for _ in range(batch)]
        done = [False] * batch
        last_pos = positions[:, -1:]
        for _step in range(settings.max_new_tokens):
            logits = out.logits[:, -1, :].float()
            next_tokens = self._pick(logits, settings, generators)
            for row in range(batch):
                if done[row]:
                    continue
                token = int(next_tokens[row])
                if token in self.eos_ids:
                    done[row] = True
                    continue
                generated[row].append(token)
                if settings.stop and self._hit_stop(generated[row], settings.stop):
                    done[row] = True
            if all(done):
                break
            step_ids = next_tokens.view(batch, 1).to(self.device)
            step_ids[torch.tensor(done, device=self.device)] = self.pad_id
            attention = torch.cat([attention, attention.new_ones((batch, 1))], dim=1)
            last_pos = last_pos + 1
            out = self.model(
                input_ids=step_ids, attention_mask=attention, position_ids=last_pos,
                past_key_values=cache, use_cache=True,
            )
        return [self._finish(tokens, settings.stop) for tokens in generated]

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
        picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
        return torch.cat(picks)

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
        order = sorted(range(len(pairs)), key=lambda i: -(len(encoded[i][0]) + len(encoded[i][1])))
        lengths = [len(encoded[i][0]) + len(encoded[i][1]) for i in order]
        rows = [(i, 0) for i in order]
        greedy = GenerationSettings(max_new_tokens=0)
        for batch in self._batches(rows, lengths, greedy):
            full = [encoded[i][0] + encoded[i][1] for i, _ in batch]
            input_ids, attention = self._left_pad(full)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(
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
