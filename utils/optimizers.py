"""The optimisers of pretraining (docs/method.md §1): the encoder and heads' SGD with momentum 0.9 or AdamW with
its per-epoch schedule, and the logit scale's own Adam. The paper does not give them: the settings are the recipe
of the methods C2VL compares with (train.PRESETS). Not a paper concept: plumbing for train.py.
"""
import math

import torch


def make_optimizers(config, model, loss_fn):
    """The encoder and heads' optimiser (SGD with momentum 0.9 or AdamW, no weight decay on biases and BatchNorm)
    with its per-epoch schedule, and the logit scale's own Adam."""
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if next(model.parameters()).is_cuda else {}  # one kernel for all parameters
    optimizer = (torch.optim.SGD(groups, lr=config.lr, momentum=0.9, **fused) if config.optimizer == "sgd"
                 else torch.optim.AdamW(groups, lr=config.lr, **fused))
    steps = [int(s) for s in config.lr_steps.split(",") if s.strip()] if config.lr_steps else []

    def lr_factor(epoch):  # epoch: 0-based number of finished epochs
        warm = (epoch + 1) / config.warmup_epochs if epoch < config.warmup_epochs else 1.0
        if config.lr_schedule == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        return warm * 0.1 ** sum(epoch >= s for s in steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    # Reconstruction: the logit scale s = log t has its own Adam at a small rate, as CLIP trains it (in the SGD
    # group at lr 0.1 it ran to t = 0.0004 by epoch 3 and training died); alternative: --logit_scale_lr 0, fixed t.
    loss_fn.log_logit_scale.requires_grad_(config.logit_scale_lr > 0)
    scale_optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.logit_scale_lr, betas=(0.9, 0.98), eps=1e-6)
    return optimizer, scale_optimizer, scheduler
