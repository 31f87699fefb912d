"""The audio-aware query decoder.

N_q queries start from the projected audio embedding of their frame (audio-aware queries) or
from learned vectors (the plain-query ablation), each with its own learned query position
embedding. Every layer: self-attention among the queries, cross-attention to the encoder memory
(with its position encoding), FFN; post-norm, as DETR. The output of every layer is returned
(after a shared LayerNorm) for the auxiliary losses.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class DecoderLayer(nn.Module):
    """Self-attention, cross-attention to the memory, FFN; each with a residual and LayerNorm."""

    def __init__(
        self, *, d_model: int = 256, num_heads: int = 8, dim_feedforward: int = 1024, dropout=0.1
    ) -> None:
        """Args:
        d_model: token width.
        num_heads: attention heads.
        dim_feedforward: FFN hidden width.
        dropout: dropout after the attentions and in the FFN.
        """
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            d_model, num_heads, dropout=dropout, batch_first=True
        )
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = nn.MultiheadAttention(
            d_model, num_heads, dropout=dropout, batch_first=True
        )
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.activation = nn.ReLU(inplace=True)
        self.dropout3 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout4 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, tgt: Tensor, query_pos: Tensor, memory: Tensor, memory_key: Tensor) -> Tensor:
        """tgt, query_pos [N, Q, d]; memory and memory_key (memory + its position) [N, S, d]
        → [N, Q, d]."""
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + query_pos, memory_key, memory, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(attended))
        ffn = self.linear2(self.dropout3(self.activation(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout4(ffn))


class AudioAwareDecoder(nn.Module):
    """Audio tokens + encoder memory → query embeddings of every layer [L, N, Q, d]."""

    def __init__(
        self,
        *,
        layer: DecoderLayer,
        num_layers: int,
        d_model: int,
        num_queries: int,
        audio_queries: bool = True,
    ) -> None:
        """Args:
        layer: one decoder layer; it is deep-copied ``num_layers`` times.
        num_layers: number of layers.
        d_model: token width.
        num_queries: queries per frame.
        audio_queries: initialise the queries from the audio (True) or learn them (False).
        """
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.query_pos = nn.Embedding(num_queries, d_model)
        self.audio_queries = audio_queries
        self.query_feat = None if audio_queries else nn.Embedding(num_queries, d_model)
        self.num_queries = num_queries
        self.d_model = d_model

    def forward(self, audio_tokens: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        """Args:
            audio_tokens: projected audio [N, 1, d].
            memory: encoder tokens [N, S, d].
            memory_pos: their position encodings [1 or N, S, d].

        Returns:
            [L, N, Q, d], the normalised output of every layer (the last one last).
        """
        n = memory.shape[0]
        shape = (n, self.num_queries, self.d_model)
        if self.query_feat is None:
            tgt = audio_tokens.expand(shape)  # [N, Q, d]
        else:
            tgt = self.query_feat.weight[None].expand(shape)  # [N, Q, d]
        query_pos = self.query_pos.weight[None].expand(shape)  # [N, Q, d]
        memory_key = memory + memory_pos  # [N, S, d], the same for every layer
        outputs = []
        for layer in self.layers:
            tgt = layer(tgt, query_pos, memory, memory_key)
            outputs.append(self.norm(tgt))
        return torch.stack(outputs)  # [L, N, Q, d]
