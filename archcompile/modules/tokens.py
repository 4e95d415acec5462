"""Token layers: images to sequences and back, learnable tokens, pooling."""

import torch
from torch import Tensor, nn


class ToTokens(nn.Module):
    """An image [N, C, H, W] as a sequence of H*W tokens [N, H*W, C]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2).transpose(1, 2)


class ToImage(nn.Module):
    """A sequence [N, H*W, C] as an image [N, C, H, W]."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        self.height = height
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2).reshape(x.size(0), -1, self.height, self.width)


class Transpose(nn.Module):
    """Swaps the two axes of a sequence: [N, L, D] -> [N, D, L]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2)


class ClsToken(nn.Module):
    """Prepends a learnable class token: [N, L, D] -> [N, L + 1, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.token.expand(x.size(0), -1, -1), x], 1)


class PosEmbedding(nn.Module):
    """Adds a learnable position embedding of fixed length to the tokens."""

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(1, length, dim).normal_(std=0.02))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.embedding


class TakeToken(nn.Module):
    """One token of the sequence: [N, L, D] -> [N, D]."""

    def __init__(self, index: int = 0) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.index]


class TokenMean(nn.Module):
    """The mean over the tokens: [N, L, D] -> [N, D]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(1)
