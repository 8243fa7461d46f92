"""The attention CNN-LSTM (after arXiv 2510.13443) that maps an input window to 50 horizons."""

from __future__ import annotations

import torch
from torch import nn

from kneegui.model.config import KneeNetConfig


class AttentionPool(nn.Module):
    """Additive attention over time: weights each LSTM state, returns their weighted sum."""

    def __init__(self, hidden: int, attention_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(hidden, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, H)
        weights = torch.softmax(self.score(torch.tanh(self.project(states))), dim=1)
        return (weights * states).sum(dim=1)


class KneeNet(nn.Module):
    """(B, T, C) normalised inputs -> (B, horizons) normalised future angle (or its change).

    Causal 1-D convolutions extract local patterns per time step, an LSTM integrates them,
    attention pooling plus the last LSTM state summarise the window, and an MLP head emits the
    whole trajectory at once. A linear skip from the last ``skip_steps`` inputs gives the head
    a direct extrapolation path (useful for the shortest horizons).
    """

    def __init__(self, config: KneeNetConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.pad = c.kernel - 1
        self.conv1 = nn.Conv1d(c.n_inputs, c.conv_channels, c.kernel)
        self.conv2 = nn.Conv1d(c.conv_channels, c.conv_channels, c.kernel, stride=c.conv_stride)
        self.act = nn.GELU()
        self.lstm = nn.LSTM(c.conv_channels, c.lstm_hidden, batch_first=True)
        self.attention = AttentionPool(c.lstm_hidden, c.attention_dim)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * c.lstm_hidden, c.head_hidden),
            nn.GELU(),
            nn.Linear(c.head_hidden, c.horizons),
        )
        self.skip = nn.Linear(c.n_inputs * c.skip_steps, c.horizons)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.transpose(1, 2)  # (B, C, T)
        z = self.act(self.conv1(nn.functional.pad(z, (self.pad, 0))))
        z = self.act(self.conv2(nn.functional.pad(z, (self.pad, 0))))
        states, _ = self.lstm(z.transpose(1, 2))
        summary = torch.cat([self.attention(states), states[:, -1]], dim=1)
        out = self.head(self.dropout(summary))
        recent = x[:, -self.config.skip_steps :, :].reshape(x.shape[0], -1)
        return out + self.skip(recent)

    #: Parameter groups for fine-tuning, from the output backwards.
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "head": [*self.head.parameters(), *self.skip.parameters()],
            "last": [
                *self.head.parameters(),
                *self.skip.parameters(),
                *self.attention.parameters(),
                *self.lstm.parameters(),
            ],
            "all": list(self.parameters()),
        }


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
