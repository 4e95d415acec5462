"""Shifted-window attention and patch merging of the Swin Transformer
(Liu et al., 2021), on tokens laid out as an image, as torchvision computes them."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows of window x window tokens of a
    height x width grid [N, H*W, D], the grid rolled by shift first (with a mask
    between tokens the roll brought together), plus a learnable relative
    position bias per head."""

    def __init__(
        self, dim: int, heads: int, height: int, width: int, window: int, shift: int = 0
    ) -> None:
        super().__init__()
        self.heads = heads
        self.height = height
        self.width = width
        self.window = window
        self.shift = shift if window < min(height, width) else 0
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        span = 2 * window - 1
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(span * span, heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _bias(self, x: Tensor) -> Tensor:
        """Relative position bias [heads, w*w, w*w] (computed, not a buffer: the
        state_dict holds parameters only, in TorchScript too)."""
        w = self.window
        cell = torch.arange(w * w, device=x.device)
        y, c = cell // w, cell % w
        dy, dc = y[:, None] - y[None, :] + w - 1, c[:, None] - c[None, :] + w - 1
        bias = self.relative_position_bias_table[(dy * (2 * w - 1) + dc).flatten()]
        return bias.reshape(w * w, w * w, self.heads).permute(2, 0, 1)

    def _mask(self, x: Tensor) -> Tensor:
        """-100 between tokens of a window that the roll brought from different
        regions of the grid: [windows, 1, w*w, w*w]."""
        w, s, h, v = self.window, self.shift, self.height, self.width
        rows, cols = torch.arange(h, device=x.device), torch.arange(v, device=x.device)
        row_region = (rows >= h - w).long() + (rows >= h - s).long()
        col_region = (cols >= v - w).long() + (cols >= v - s).long()
        region = row_region[:, None] * 3 + col_region[None, :]
        region = (
            region.view(h // w, w, v // w, w).permute(0, 2, 1, 3).reshape(-1, w * w)
        )
        differ = region.unsqueeze(1) - region.unsqueeze(2)
        return differ.ne(0).to(x.dtype).mul(-100.0).unsqueeze(1)

    def forward(self, x: Tensor) -> Tensor:
        n, d = x.size(0), x.size(2)
        w, s, gh, gw = (
            self.window,
            self.shift,
            self.height // self.window,
            self.width // self.window,
        )
        mask = self._bias(x)
        if s > 0:
            mask = mask + self._mask(x)
        x = x.reshape(n, self.height, self.width, d)
        if s > 0:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        x = x.reshape(n, gh, w, gw, w, d).permute(0, 1, 3, 2, 4, 5)
        qkv = self.qkv(x.reshape(n, gh * gw, w * w, d))
        qkv = qkv.reshape(n, gh * gw, w * w, 3, self.heads, d // self.heads)
        qkv = qkv.permute(3, 0, 1, 4, 2, 5)
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        x = x.transpose(2, 3).reshape(n, gh, gw, w, w, d).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(n, self.height, self.width, d)
        if s > 0:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
        return self.proj(x.reshape(n, self.height * self.width, d))


class MergePatches(nn.Module):
    """Each 2x2 group of a height x width grid of tokens as one token of four
    times the width: [N, H*W, D] -> [N, H*W / 4, 4 D], as torchvision's
    PatchMerging orders them."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        self.height = height
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.size(0), self.height, self.width, x.size(2))
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        x = torch.cat(parts, -1)
        return x.reshape(x.size(0), -1, x.size(3))
