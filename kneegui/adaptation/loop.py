"""The fine-tuning loop: each candidate layer set trained with AdamW and early-stopped on the
held-back windows; the state with the lowest held-back loss wins (the un-tuned start included)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ProgressFn = Callable[[int, float, float], None]


@dataclass
class TuneOutcome:
    """The best network found, its recipe ("none": the un-tuned start), per-epoch history."""

    net: Any
    recipe: str
    history: list[dict]
    cancelled: bool


def tune_network(base: Any, train: tuple, val: tuple, settings: Any,
                 progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> TuneOutcome:
    """Fine-tune a copy of ``base`` on ``train = (x, y)`` tensors, early-stopping on ``val``.

    ``settings`` is a :class:`kneegui.adaptation.finetune.FinetuneSettings`. ``progress(epoch,
    train_loss, val_loss)`` after every epoch (epochs count on across recipes); ``cancel`` is
    checked every mini-batch (the best state so far is returned, ``cancelled=True``).
    """
    import torch

    xt, yt = train
    xv, yv = val
    gen = torch.Generator().manual_seed(settings.seed)
    loss_fn = torch.nn.MSELoss()
    start = copy.deepcopy(base)
    start.eval()

    def val_loss(net) -> float:
        net.eval()
        with torch.inference_mode():
            return float(loss_fn(net(xv), yv))

    start_loss = val_loss(start)
    best_loss, best_state, best_recipe = start_loss, copy.deepcopy(start.state_dict()), "none"
    history: list[dict] = [{"epoch": 0, "recipe": "none", "train_loss": float("nan"),
                            "val_loss": start_loss}]
    cancelled = False
    epochs_done = 0
    for recipe in settings.recipes:
        net = copy.deepcopy(start)
        params = net.parameter_groups()[recipe]
        trainable = {id(p) for p in params}
        for p in net.parameters():
            p.requires_grad_(id(p) in trainable)
        opt = torch.optim.AdamW(params, lr=settings.lr[recipe], weight_decay=settings.weight_decay)
        r_best, r_epoch = start_loss, 0
        for epoch in range(1, settings.max_epochs + 1):
            net.train()
            net.dropout.eval() if hasattr(net, "dropout") else None
            order = torch.randperm(len(xt), generator=gen)
            total, batches = 0.0, 0
            for s in range(0, len(order), settings.batch_size):
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                idx = order[s : s + settings.batch_size]
                loss = loss_fn(net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, batches = total + float(loss.detach()), batches + 1
            if cancelled:
                break
            vl = val_loss(net)
            epochs_done += 1
            history.append({"epoch": epochs_done, "recipe": recipe,
                            "train_loss": total / max(batches, 1), "val_loss": vl})
            if progress is not None:
                progress(epochs_done, total / max(batches, 1), vl)
            if vl < r_best:
                r_best, r_epoch = vl, epoch
                if vl < best_loss:
                    best_loss, best_recipe = vl, recipe
                    best_state = copy.deepcopy(net.state_dict())
            elif epoch - r_epoch >= settings.patience:
                break
        if cancelled:
            break
    tuned = copy.deepcopy(start)
    tuned.load_state_dict(best_state)
    for p in tuned.parameters():
        p.requires_grad_(True)
    tuned.eval()
    return TuneOutcome(tuned, best_recipe, history, cancelled)
