"""The global batches of pretraining: their order, and where they come from.

GlobalBatchSampler fixes the order: epoch e shuffles the samples with seed (seed, e), so any number of processes
see the same global batches and a resumed run continues exactly. make_batches picks where the rows come from: the
whole split resident on the device (each batch one indexing operation) or a DataLoader over the memory-mapped split.
Not a paper concept: train.py's plumbing.
"""
import numpy as np
import torch


class TrainSetupError(ValueError):
    """A run that cannot start as configured; the message says what to change."""


def epoch_seed(seed, epoch):
    """The seed of epoch e's random draws (batch order, prompt sampling): the same in every process and on resume."""
    return seed * 100_003 + epoch


class GlobalBatchSampler(torch.utils.data.Sampler):
    """The same global batches in any number of processes: epoch e shuffles the samples with seed (seed, e) and
    cuts them into global batches (the last partial one dropped); process r takes its slice of each batch."""

    def __init__(self, indices, global_batch, rank, world, seed):
        if global_batch % world:
            raise TrainSetupError(f"--batch-size {global_batch} must be divisible by the number of processes {world}")
        if len(indices) < global_batch:
            raise TrainSetupError(f"the training split has {len(indices)} samples with prompts, fewer than one batch "
                             f"({global_batch}): lower --batch-size")
        self.indices, self.global_batch, self.seed = list(indices), global_batch, seed
        self.rank, self.world = rank, world
        self.epoch = 1

    def __len__(self):
        return len(self.indices) // self.global_batch

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(len(self.indices), generator=generator).tolist()
        local = self.global_batch // self.world
        for b in range(len(self)):
            batch = order[b * self.global_batch:(b + 1) * self.global_batch]
            yield [self.indices[i] for i in batch[self.rank * local:(self.rank + 1) * local]]


class ResidentBatches:
    """The whole training input on the device, each batch one indexing operation: the preprocessed split
    (N, 3, T, 25, 2) float32 and the prompt features (N, [K,] D) float16. C2VL has no augmentation, so this is
    exactly what the DataLoader would deliver, in the sampler's order. Yields (x, {m: prompt rows}, index)."""

    def __init__(self, train_set, features, modalities, sampler, device):
        self.x = torch.from_numpy(np.ascontiguousarray(train_set.data)).to(device)  # (N, 3, T, 25, 2)
        self.features = {m: torch.from_numpy(np.ascontiguousarray(features[m])).to(device) for m in modalities}
        self.sampler, self.device = sampler, device

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        for local in self.sampler:
            index = torch.tensor(local)  # (B,) dataset indices, on the CPU as the DataLoader gives them
            rows = index.to(self.device, non_blocking=True)
            yield self.x[rows], {m: f[rows] for m, f in self.features.items()}, index


def make_batches(config, train_set, features, modalities, sampler, device):
    """--input: ResidentBatches, or a DataLoader over the memory-mapped split (prompt rows looked up per batch)."""
    size = train_set.data.nbytes + sum(features[m].nbytes for m in modalities)
    resident = config.input == "resident" or (config.input == "auto" and device.type == "cuda" and
                                              size <= 0.25 * torch.cuda.get_device_properties(device).total_memory)
    if resident:
        return ResidentBatches(train_set, features, modalities, sampler, device)
    workers = config.workers if config.workers >= 0 else (4 if device.type == "cuda" else 0)
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, num_workers=workers,
                                         pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    return LoaderBatches(loader, features, modalities, device)


class LoaderBatches:
    """The DataLoader path of make_batches: skeletons read from the memory-mapped split by worker processes,
    prompt rows looked up in the (memory-mapped) caches; yields what ResidentBatches yields."""

    def __init__(self, loader, features, modalities, device):
        self.loader, self.features, self.modalities, self.device = loader, features, modalities, device

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for x, _, index in self.loader:
            yield (x.to(self.device, non_blocking=True),
                   {m: torch.from_numpy(self.features[m][index.numpy()]) for m in self.modalities}, index)
