"""A key/value cache that decodes in place.

transformers' `DynamicCache` appends each step's keys and values with `torch.cat`, which
copies the whole cache of every layer at every decode step: on a CPU with a few hundred
cached positions and 64 rows that was 13% of the generation time. `ReservedCache` gives
each layer room for a known number of positions after what it holds and writes new states
into it; the model reads views of the filled part. Same values, so the same outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer


class ReservedLayer(DynamicLayer):
    """A `DynamicLayer` whose `keys`/`values` are views of buffers with `spare` positions of
    room after them; an update that does not fit (or follows a base-class method that replaced
    the tensors) moves them into new buffers with `spare` positions of room again."""

    def __init__(self, spare: int, fixed: bool = False) -> None:
        super().__init__()
        self.spare = spare
        self.fixed = fixed  # a window onto another layer's buffers: writing elsewhere would be lost
        self._room: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self.get_seq_length(), self.get_seq_length() + key_states.shape[-2]
        if not self._in_room() or self._room[0].shape[-2] < end:  # type: ignore[index]
            if self.fixed:
                raise RuntimeError("a cache window has no room for these positions")
            self._move(end + self.spare, key_states, value_states)
        keys, values = self._room  # type: ignore[misc]
        keys[:, :, start:end] = key_states
        values[:, :, start:end] = value_states
        self.keys, self.values = keys[:, :, :end], values[:, :, :end]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.keys is not None:  # a model split over GPUs keeps each layer's cache on its own GPU
            indices = indices.to(self.keys.device)
        if self.get_seq_length() > 0 and self._in_room():
            keys, values = self._room  # type: ignore[misc]
            self._room = keys.index_select(0, indices), values.index_select(0, indices)
            length = self.get_seq_length()
            self.keys, self.values = self._room[0][:, :, :length], self._room[1][:, :, :length]
        else:
            super().batch_select_indices(indices)

    def reset(self) -> None:
        self._room = None
        super().reset()

    def _in_room(self) -> bool:
        """Whether `keys` are still the views `update` made (a base-class method may have
        replaced them, e.g. with a repeated copy)."""
        if self._room is None or self.keys is None or self.keys.dim() != 4:
            return False
        room = self._room[0]
        return (self.keys.data_ptr() == room.data_ptr() and self.keys.shape[:2] == room.shape[:2]
                and self.keys.stride() == room.stride())

    def _move(self, capacity: int, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        length = self.get_seq_length()
        keys = key_states.new_empty((*key_states.shape[:2], capacity, key_states.shape[-1]))
        values = value_states.new_empty((*value_states.shape[:2], capacity, value_states.shape[-1]))
        if length:
            keys[:, :, :length] = self.keys
            values[:, :, :length] = self.values
        self._room = keys, values


class ReservedCache(DynamicCache):
    """A `DynamicCache` of `ReservedLayer`s: every layer keeps `spare` positions of room."""

    def __init__(self, spare: int) -> None:
        Cache.__init__(self, layer_class_to_replicate=lambda: ReservedLayer(spare))  # type: ignore[arg-type]

    def window(self, rows: slice, start: int, clear_from: int) -> ReservedCache:
        """A cache over rows `rows` of this one, holding its first `start` positions and writing
        the next ones in place into this cache's buffers, so a pass over some rows can begin
        later than the others (a shorter suffix, left-padded). Positions `clear_from` to `start`
        (that padding, never written by a pass) are zeroed: they are masked, but read."""
        view = ReservedCache(0)
        for layer in self.layers:
            assert isinstance(layer, ReservedLayer) and layer._in_room()
            keys, values = (buffer[rows] for buffer in layer._room)  # type: ignore[union-attr]
            keys[:, :, clear_from:start] = 0
            values[:, :, clear_from:start] = 0
            part = ReservedLayer(0, fixed=True)
            part.lazy_initialization(keys, values)
            part._room = keys, values
            part.keys, part.values = keys[:, :, :start], values[:, :, :start]
            view.layers.append(part)
        return view

    def extend_to(self, length: int) -> None:
        """Take positions up to `length` as filled (written through windows)."""
        for layer in self.layers:
            assert isinstance(layer, ReservedLayer) and layer._room is not None
            keys, values = layer._room
            layer.keys, layer.values = keys[:, :, :length], values[:, :, :length]
