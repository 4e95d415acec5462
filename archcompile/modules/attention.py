"""Multi-head self-attention on tokens (Vaswani et al., 2017)."""

import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head self-attention on tokens [N, L, D]: one linear for queries,
    keys and values, torch's scaled_dot_product_attention, an output linear."""

    def __init__(
        self, dim: int, heads: int, qkv_bias: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, length, dim = x.size(0), x.size(1), x.size(2)
        qkv = self.qkv(x).reshape(n, length, 3, self.heads, dim // self.heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=p)
        return self.proj(x.transpose(1, 2).reshape(n, length, dim))
