"""The plain data types every part of ``mmpc.recsys`` shares (no models, no Lightning, no I/O).

``MODALITIES`` and ``SPLITS`` name the feature modalities and the interaction splits;
:class:`CSR` is the row-compressed 0/1 matrix of one split; :class:`InteractionData` is what a
:class:`~mmpc.recsys.models.base.Recommender` reads. Both ``mmpc.recsys.data`` (which builds them)
and ``mmpc.recsys.models`` (which reads them) import them from here, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["CSR", "MODALITIES", "SPLITS", "InteractionData"]

MODALITIES: tuple[str, ...] = ("text", "image")
SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class CSR:
    """Row-compressed 0/1 matrix: row r holds ``indices[indptr[r]:indptr[r + 1]]`` (sorted)."""

    indptr: Tensor  # (R + 1,) int64
    indices: Tensor  # (nnz,) int64
    num_cols: int

    @classmethod
    def from_pairs(cls, rows: Tensor, cols: Tensor, num_rows: int, num_cols: int) -> CSR:
        """Build from (row, col) pairs; duplicates are kept as given."""
        key = rows.long() * num_cols + cols.long()
        order = torch.argsort(key)
        counts = torch.bincount(rows.long(), minlength=num_rows)
        indptr = torch.zeros(num_rows + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(counts, 0)
        return cls(indptr, cols.long()[order].contiguous(), num_cols)

    @property
    def num_rows(self) -> int:
        return self.indptr.numel() - 1

    @property
    def nnz(self) -> int:
        return self.indices.numel()

    def degrees(self) -> Tensor:
        """(R,) number of entries per row."""
        return self.indptr[1:] - self.indptr[:-1]

    def to(self, device: torch.device | str) -> CSR:
        return CSR(self.indptr.to(device), self.indices.to(device), self.num_cols)

    def gather(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Entries of the given rows, vectorised.

        Returns:
            ``(pos, cols)``: ``pos[k]`` is the position in ``rows`` of entry k, ``cols[k]`` its
            column; ready for ``scores.index_put_((pos, cols), value)``.
        """
        starts = self.indptr[rows]  # (B,)
        counts = self.indptr[rows + 1] - starts  # (B,)
        pos = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device), counts)
        offsets = torch.cumsum(counts, 0) - counts  # (B,) exclusive prefix sum
        within = torch.arange(pos.numel(), device=rows.device) - offsets[pos]
        return pos, self.indices[starts[pos] + within]

    def dense(self, rows: Tensor) -> Tensor:
        """(B, num_cols) bool matrix of the given rows."""
        out = torch.zeros(rows.numel(), self.num_cols, dtype=torch.bool, device=rows.device)
        pos, cols = self.gather(rows)
        out[pos, cols] = True
        return out

    def contains(self, rows: Tensor, cols: Tensor) -> Tensor:
        """(N,) bool: whether each (row, col) pair is an entry (binary search in sorted keys)."""
        keys = self.row_ids() * self.num_cols + self.indices  # sorted by construction
        query = rows.long() * self.num_cols + cols.long()
        if keys.numel() == 0:
            return torch.zeros_like(query, dtype=torch.bool)
        idx = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
        return keys[idx] == query

    def row_ids(self) -> Tensor:
        """(nnz,) row of every entry."""
        return torch.repeat_interleave(
            torch.arange(self.num_rows, device=self.indptr.device), self.degrees()
        )


@dataclass
class InteractionData:
    """Everything a recommender may read: sizes, split interactions as CSR, item features.

    Attributes:
        num_users: U; user ids are 0..U-1.
        num_items: I; item ids are 0..I-1.
        splits: ``{"train"|"valid"|"test": CSR (U, I)}``.
        features: ``{"text"|"image": (I, d) float32}``; absent modalities are missing.
        user_ids / item_ids: original ids (strings) per index, or None for MMRec data.
    """

    num_users: int
    num_items: int
    splits: dict[str, CSR]
    features: dict[str, Tensor] = field(default_factory=dict)
    user_ids: list[str] | None = None
    item_ids: list[str] | None = None

    @property
    def train(self) -> CSR:
        return self.splits["train"]

    @property
    def text_feat(self) -> Tensor | None:
        return self.features.get("text")

    @property
    def image_feat(self) -> Tensor | None:
        return self.features.get("image")

    def train_edge_index(self) -> Tensor:
        """(2, E) LongTensor of train (user, item) pairs, sorted by user then item."""
        return torch.stack([self.train.row_ids(), self.train.indices])

    def train_matrix(self) -> Tensor:
        """(U, I) torch sparse COO matrix of train interactions (values 1.0, coalesced)."""
        return torch.sparse_coo_tensor(
            self.train_edge_index(),
            torch.ones(self.train.nnz),
            (self.num_users, self.num_items),
            check_invariants=True,
        ).coalesce()

    def eval_users(self, split: str) -> Tensor:
        """(n,) users with at least one interaction in ``split``, ascending."""
        return torch.nonzero(self.splits[split].degrees() > 0).flatten()
