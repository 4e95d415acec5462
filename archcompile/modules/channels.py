"""Channel operations torch.nn has no module for."""

from torch import Tensor, nn


class ChannelSplit(nn.Module):
    """Part ``index`` of the input's channels cut into ``parts`` equal parts
    (ShuffleNet v2's ``x.chunk(2, dim=1)``)."""

    def __init__(self, parts: int, index: int) -> None:
        super().__init__()
        self.parts = parts
        self.index = index

    def forward(self, x: Tensor) -> Tensor:
        return x.chunk(self.parts, dim=1)[self.index]

    def extra_repr(self) -> str:
        return f"parts={self.parts}, index={self.index}"
