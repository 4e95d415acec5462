"""MLP-Mixer written by hand from the paper, for tests only.

Tolstikhin et al., "MLP-Mixer: An all-MLP Architecture for Vision" (2021),
section 2 and figure 1: a per-patch linear embedding (a conv with kernel =
stride = patch), Mixer layers of a token-mixing MLP (on the transposed table)
and a channel-mixing MLP, each with a pre-layer-norm and a skip connection,
then a layer norm, global average pooling over the tokens and a linear head.
Each MLP is two linear layers with a GELU between them. Layer norms use
eps 1e-6, as the authors' JAX code (flax's default).
"""

from __future__ import annotations

from torch import Tensor, nn


class MlpBlock(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int, tokens_mlp: int, channels_mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.token_mlp = MlpBlock(tokens, tokens_mlp)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.channel_mlp = MlpBlock(dim, channels_mlp)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class MlpMixer(nn.Module):
    """Mixer-S/16 by default: 224x224 images, 196 patches of width 512."""

    def __init__(
        self,
        num_classes: int = 1000,
        image: int = 224,
        patch: int = 16,
        dim: int = 512,
        depth: int = 8,
        tokens_mlp: int = 256,
        channels_mlp: int = 2048,
    ) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.stem = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.blocks = nn.Sequential(
            *[MixerBlock(tokens, dim, tokens_mlp, channels_mlp) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(1))
