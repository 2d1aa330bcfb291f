"""GLAD's network: node encoder, GAT per snapshot, GRU over snapshots, edge scorer.

Shapes (``N`` nodes, ``E`` edges of a batch of ``G`` graphs, ``S`` snapshots, width ``H``):

1. **Node input** ``x0`` [N, H]: templates get a projection of their MiniLM text vector (so
   a template never seen in training still has a meaningful input: content-aware), entities
   their type embedding plus a learned embedding of their value (the type's "unknown" row
   for values outside the vocabulary), ``<start>`` its type embedding.
2. **Spatial**: for each snapshot ``s``, ``gnn_layers`` GAT layers over the edges present
   in that slice (both directions, with self loops; the edge kind and direction are edge
   features), with residual connections and LayerNorm.
3. **Temporal**: a GRU cell reads the snapshot states of each node in order; a node absent
   from a slice keeps its state. The final state plus ``x0`` is the node's representation
   ``r``; the mean of ``r`` over a graph is the window context ``c``.
4. **Edge scorer**: an MLP of ``[r_u, r_v, r_u * r_v, kind, c]`` plus a bilinear term
   ``r_u^T W_kind r_v`` gives each edge an anomaly logit (higher = more anomalous).
   Directed: for ``follows`` edges ``u`` comes first. Why the bilinear term: which pairs of
   values belong together (alice with her own addresses) is largely a memory of
   identities, and a bilinear form (as in knowledge-graph embedding models) learns it in
   far fewer steps than the MLP alone. Why on ``r`` and not on the raw inputs: a pair never
   seen in training is not always wrong (alice's second address on a host she uses, seen
   apart but never together); in ``r`` each endpoint carries its window neighbours, so the
   term can tell "new but consistent with this session" from "foreign" (measured: on the
   synthetic benchmark, AUPR 0.63 with the term on raw inputs, 0.77 with it on ``r``, at
   40 epochs).

Why the GRU over slices of one window rather than over consecutive windows: sessions (HDFS
blocks, user sessions) are independent units with no meaningful "previous window", while
every window has an internal order; slices keep the model the same for sessions and time
windows, and windows stay independently scorable (batchable, parallel, no state to carry).
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GATConv
from torch_geometric.utils import scatter

__all__ = ["GladNet"]

_MP_KINDS = 7  # 3 edge kinds x 2 directions + self loop
_SELF_LOOP = 6


class GladNet(nn.Module):
    """See the module docstring. ``value_rows`` is the size of the value embedding table."""

    def __init__(
        self,
        *,
        text_dim: int,
        node_types: int,
        value_rows: int,
        hidden: int,
        heads: int,
        layers: int,
        snapshots: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.snapshots = snapshots
        self.text_proj = nn.Linear(text_dim, hidden)
        self.type_emb = nn.Embedding(node_types, hidden)
        self.value_emb = nn.Embedding(value_rows, hidden)
        # as large as the type embeddings: the identity of a value is what relations are about
        nn.init.normal_(self.value_emb.weight, std=1.0)
        self.mp_kind = nn.Embedding(_MP_KINDS, hidden // 4 or 1)
        self.convs = nn.ModuleList(
            GATConv(
                hidden,
                hidden // heads,
                heads=heads,
                edge_dim=hidden // 4 or 1,
                add_self_loops=False,
                dropout=0.0,
            )
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.gru = nn.GRUCell(hidden, hidden)
        self.out_norm = nn.LayerNorm(hidden)
        self.edge_kind = nn.Embedding(3, hidden)
        self.scorer = nn.Sequential(
            nn.Linear(5 * hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.drop = nn.Dropout(dropout)
        self.pair = nn.Parameter(torch.zeros(3, hidden, hidden))

    def node_input(
        self, x_text: torch.Tensor, node_type: torch.Tensor, value_row: torch.Tensor
    ) -> torch.Tensor:
        is_template = (node_type == 0).unsqueeze(-1).to(x_text.dtype)
        text = self.text_proj(x_text) * is_template
        out: torch.Tensor = text + self.type_emb(node_type) + self.value_emb(value_row)
        return out

    def encode(
        self,
        x0: torch.Tensor,
        *,
        node_snaps: torch.Tensor,
        edge_index: torch.Tensor,
        edge_kind: torch.Tensor,
        edge_snaps: torch.Tensor,
        batch: torch.Tensor,
        num_graphs: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Node representations ``r`` [N, H] and window contexts ``c`` [G, H]."""
        n = x0.shape[0]
        loops = torch.arange(n, device=x0.device)
        state = torch.zeros_like(x0)
        for s in range(self.snapshots):
            mask = edge_snaps[:, s] > 0
            ei = edge_index[:, mask]
            kinds = edge_kind[mask] * 2
            full_index = torch.cat([ei, ei.flip(0), torch.stack([loops, loops])], dim=1)
            full_kind = torch.cat([kinds, kinds + 1, torch.full_like(loops, _SELF_LOOP)])
            attr = self.mp_kind(full_kind)
            h = x0
            for conv, norm in zip(self.convs, self.norms, strict=True):
                h = norm(h + self.drop(nn.functional.elu(conv(h, full_index, attr))))
            present = node_snaps[:, s].unsqueeze(-1)
            state = torch.where(present, self.gru(h, state), state)
        r = self.out_norm(x0 + state)
        context = scatter(r, batch, dim=0, dim_size=num_graphs, reduce="mean")
        return r, context

    def score_edges(
        self,
        x0: torch.Tensor,
        r: torch.Tensor,
        *,
        context: torch.Tensor,
        edge_index: torch.Tensor,
        edge_kind: torch.Tensor,
        edge_graph: torch.Tensor,
    ) -> torch.Tensor:
        """An anomaly logit per edge [E]."""
        u, v = edge_index[0], edge_index[1]
        ru, rv = r[u], r[v]
        features = torch.cat(
            [ru, rv, ru * rv, self.edge_kind(edge_kind), context[edge_graph]], dim=-1
        )
        pair = torch.einsum("eh,ehk,ek->e", ru, self.pair[edge_kind], rv)
        logits: torch.Tensor = self.scorer(features).squeeze(-1) + pair
        return logits
