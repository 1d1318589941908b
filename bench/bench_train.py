"""C2VL pretraining throughput (samples/s of full training steps) and where the step time goes.

One step is exactly train.py's: a batch from either input path of train.py (--input loader: a DataLoader with the
GlobalBatchSampler over a memory-mapped data.SkeletonDataset; --input resident: the split and prompt features held
on the device, one index per batch; both measured in the same run, with their ratio), the prompt features looked up by dataset index in the memory-mapped float16 caches and
pooled (prompts.pool_prompts), C2VLModel forward (ST-GCN encoder + projection heads, bf16 autocast with --amp),
C2VLLoss over the batch in epoch 2 (teacher bank filled: every target path, the bank read), backward,
optimizer step (the preset's: AdamW for the demo, SGD + momentum for the real recipe; fused on CUDA), the bank
write. Both prompt modalities. --compile adds a row with the encoder and heads under torch.compile (train.py
--compile) and its ratio to the eager row of the same run, or the reason compiling failed.

Columns: samples/s of full steps, and the shares of the step time spent in
    data %      waiting for the DataLoader's batch + prompt lookup/pooling + host-to-device copies
                (workers as train.py: 0 on CPU, so all of the loading; 4 on GPU, so only what is not hidden)
    encoder %   encoder+heads forward + backward = forward + whole backward - the loss's own backward share
    loss %      C2VLLoss forward + backward, measured on its own on detached leaf Z (requires_grad), same batch
    other %     the rest: optimizer step, zero_grad, and the difference of the in-step and isolated loss forward
The shares come from steps with a device synchronisation at each phase boundary (free on CPU); on CUDA the
samples/s column is taken from plain steps without those extra synchronisations, run in alternating rounds with
the instrumented ones and the isolated loss; the steps keep their best round, the isolated loss (a short call)
its best call: robust to a passing machine load.

Configurations:
    demo          train.py PRESETS["demo"]: quarter-width ST-GCN, batch 32, T = 24, D = 64, 540 training samples.
                  Uses datasets/demo/xsub and its prompt caches when they exist (python train.py makes them),
                  otherwise a synthetic 540-sample set made like the ntu60-sized one.
    ntu60-sized   standard ST-GCN, D = 768, N_train = 40,091 (NTU-60 xsub train), T = 50 and 64; batch 128 on
                  CUDA, 16 on CPU (--batch overrides). Synthetic data: a memory-mapped (N, 3, T, 25, 2) float32
                  cache + label pkl read through the real SkeletonDataset, random unit float16 prompt features
                  (N, 768) per modality. The teacher bank always has 40,091 rows; the data file has --n-file rows
                  (default 40,091 on CUDA, 2,048 on CPU: the per-step cost does not depend on it). One T at a time
                  on disk (< 1.6 GB at T = 64 with 40,091 rows), deleted at the end. The freshly written file sits
                  in the page cache, as a 1.2-1.5 GB split does after the first epoch of a real run.

    python bench/bench_train.py                                  # CPU, 2 cores: ~2-3 minutes
    python bench/bench_train.py --device cuda                    # GPU: fp32 and bf16 rows, batch 128
    python bench/bench_train.py --device cuda --amp on --frames 64 --steps 50
    python bench/bench_train.py --configs ntu60-sized --batch 8 --frames 50   # quicker CPU check
    python bench/bench_train.py --device cuda --configs ntu60-sized,ntu120-sized --frames 50 --amp on
    python bench/bench_train.py --device cuda --configs ntu60-sized --frames 50 --compile   # + torch.compile row

The last column projects the real recipe's wall time at that speed: 300 epochs over the training split plus one
forward pass over train and test for the linear evaluation (ntu120-sized: 63,026 / 50,919 samples).
"""
import argparse
import json
from types import SimpleNamespace
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
from utils.files import write_labels  # noqa: E402
import prompts  # noqa: E402
from utils.batches import GlobalBatchSampler, make_batches  # noqa: E402
import train  # noqa: E402
from utils.imports import OPEN_CLIP_CONFIGS  # noqa: E402
from utils.training_prompts import load_prompt_caches  # noqa: E402
from distill import C2VLLoss, DistillConfig  # noqa: E402

MODALITIES = prompts.MODALITIES  # both prompt modalities, as train.py's --modalities auto with both caches
NTU60_XSUB_TRAIN, NTU60_XSUB_TEST = 40_091, 16_487
NTU120_XSUB_TRAIN, NTU120_XSUB_TEST = 63_026, 50_919
DEMO_TRAIN = 540
DEMO_CLIP_DIM = json.loads((OPEN_CLIP_CONFIGS / f"{prompts.DEMO_CLIP_MODEL}.json").read_text())["embed_dim"]  # D
RECIPE_EPOCHS = 300  # the real preset; + linear evaluation: one forward pass over train and test (a step bounds it)
EPOCH = 2  # the teacher bank is read (M5) from epoch 2 on


@dataclass
class BenchConfig:
    name: str
    size: str  # ST-GCN width
    batch: int
    frames: int
    dim: int  # prompt / CLIP dimension D
    bank_rows: int  # C2VLLoss num_samples (the training split size)
    file_rows: int  # rows of the data file actually read
    optimizer: str
    lr: float
    weight_decay: float
    epochs: int


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------------------------
# Data: the real demo split, or synthetic memory-mapped files read through data.SkeletonDataset
# ----------------------------------------------------------------------------------------------------------------

def demo_inputs(data_root):
    """(SkeletonDataset, {m: float16 memmap (N, D)}, indices) of the real demo, or None when its caches are missing."""
    config = train.fill_presets(train.TrainConfig(dataset="demo", split="xsub", data_root=str(data_root)))
    pretrained = train.clip_pretrained(config)
    caches = [prompts.cache_path(data_root, "demo", "xsub", "train", m, config.clip_model, pretrained)
              for m in MODALITIES]
    if not all(p.is_file() and p.with_suffix(".json").is_file() for p in caches):
        return None
    try:
        train_set = data.load_split(data_root, "demo", "xsub", "train", config.frames, config.normalization)
        features, present = load_prompt_caches(config, train_set.names, dict(zip(MODALITIES, caches)))
    except (OSError, data.DataFormatError, prompts.PromptError) as error:
        print(f"demo data unusable ({error}); using a synthetic 540-sample set", file=sys.stderr)
        return None
    return train_set, features, np.flatnonzero(present).tolist()


def write_synthetic(folder, rows, frames, dim, seed=0):
    """A synthetic split in `folder`: the (rows, 3, T, 25, 2) float32 preprocessed cache that SkeletonDataset reads
    (data.preprocessed_path of train_data.npy), train_label.pkl, and unit float16 prompt features (rows, dim) per
    modality. Returns (SkeletonDataset, {m: memmap}, indices)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data_path = folder / "train_data.npy"  # never written: the dataset reads its cache directly
    cache = data.preprocessed_path(data_path, frames, "aimclr")
    array = np.lib.format.open_memmap(cache, mode="w+", dtype=np.float32, shape=(rows, 3, frames, 25, 2))
    chunk = 512
    block = rng.standard_normal((chunk, 3, frames, 25, 2), dtype=np.float32) * 0.3  # one random block, tiled
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        array[start:start + n] = block[:n]
    array.flush()
    del array
    names = [f"S{1 + i // 10000:03d}C001P001R001A{1 + i % 60:03d}_{i}" for i in range(rows)]  # unique names
    write_labels(folder / "train_label.pkl", names, [i % 60 for i in range(rows)])
    train_set = data.SkeletonDataset(data_path, folder / "train_label.pkl", num_class=60, frames=frames)
    features = {}
    for m in MODALITIES:
        path = folder / f"train_{m}_features.npy"
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, dim))
        for start in range(0, rows, 8192):
            f = rng.standard_normal((min(8192, rows - start), dim), dtype=np.float32)
            out[start:start + len(f)] = f / np.linalg.norm(f, axis=1, keepdims=True)
        out.flush()
        del out
        features[m] = np.load(path, mmap_mode="r")  # as prompts.load_prompt_features returns it
    return train_set, features, list(range(rows))


def endless(batches, sampler):
    """train.py's epochs back to back: an endless iterator over its (x, prompt rows, index) batches."""
    while True:
        yield from batches
        sampler.epoch += 1


# ----------------------------------------------------------------------------------------------------------------
# The measurement
# ----------------------------------------------------------------------------------------------------------------

class Trainer:
    """train.py's model, loss, optimizer, loader and step, with timers."""

    def __init__(self, cfg, train_set, features, indices, device, amp, workers, seed=0, batches="loader",
                 compiled=False):
        self.cfg, self.features, self.device, self.amp = cfg, features, device, amp
        torch.manual_seed(seed)
        self.model = train.C2VLModel(cfg.size, cfg.dim, MODALITIES).to(device)
        self.net = torch.compile(self.model) if compiled else self.model  # train.py --compile
        self.loss_fn = C2VLLoss(DistillConfig(), cfg.bank_rows, cfg.dim, MODALITIES).to(device)
        model = self.model
        settings = train.fill_presets(train.TrainConfig(dataset="demo" if cfg.name == "demo" else "ntu60",
                                                        optimizer=cfg.optimizer, lr=cfg.lr,
                                                        weight_decay=cfg.weight_decay))
        self.optimizer, self.scale_optimizer, _ = train.make_optimizers(settings, model, self.loss_fn)
        self.grad_clip = settings.grad_clip
        self.fill_bank(seed)
        self.sampler = GlobalBatchSampler(indices, cfg.batch, 0, 1, seed)
        self.sampler.epoch = EPOCH
        self.loader = make_batches(SimpleNamespace(input=batches, workers=workers), train_set, features, MODALITIES,
                                   self.sampler, device)  # train.py's --input resident | loader
        self.iterator = endless(self.loader, self.sampler)
        self.generator = torch.Generator().manual_seed(seed)
        model.train()
        self.loss_fn.train()

    @torch.no_grad()
    def fill_bank(self, seed):
        """Every bank row written once, as after epoch 1: every sample of a batch has a teacher in epoch 2."""
        g = torch.Generator().manual_seed(seed + 1)
        for start in range(0, self.cfg.bank_rows, 8192):
            index = torch.arange(start, min(start + 8192, self.cfg.bank_rows))
            Z = {m: torch.nn.functional.normalize(torch.randn(len(index), self.cfg.dim, generator=g), dim=1)
                 for m in MODALITIES}
            self.loss_fn.bank.write(index.to(self.device), {m: z.to(self.device) for m, z in Z.items()}, EPOCH - 1)

    def load(self):
        """(a) next batch, prompt features by index, copies to the device (train.py's lines)."""
        x, rows, index = next(self.iterator)  # x (B, 3, T, 25, 2) on the device
        P = {m: prompts.pool_prompts(rows[m], "mean", self.generator).to(self.device) for m in MODALITIES}
        return x, P, index.to(self.device)

    def step(self, timed):
        """One full training step. timed: synchronise at each phase boundary and return the phases' seconds."""
        device, t = self.device, [time.perf_counter()]
        x, P, index = self.load()
        if timed:
            sync(device)
            t.append(time.perf_counter())
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp):
            Z = self.net(x)  # {m: (B, D)}
        if timed:
            sync(device)
            t.append(time.perf_counter())
        loss, batch = self.loss_fn(Z, P, index, EPOCH, self.cfg.epochs)
        if timed:
            sync(device)
            t.append(time.perf_counter())
        self.optimizer.zero_grad(set_to_none=True)
        self.scale_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if timed:
            sync(device)
            t.append(time.perf_counter())
        if self.grad_clip:  # as train.train_step: timed with the optimiser
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scale_optimizer.step()
        self.loss_fn.clamp_logit_scale_()
        self.loss_fn.bank.write(batch.index, batch.Z, EPOCH)  # as train.train_step: after the optimiser
        if timed:
            sync(device)
            t.append(time.perf_counter())
            return dict(zip(("data", "forward", "loss_forward", "backward", "optimizer"), np.diff(t)))
        return None

    def steps(self, n, timed):
        """n full steps -> (seconds per step, mean phase seconds per step or None)."""
        sync(self.device)
        start = time.perf_counter()
        phases = [self.step(timed) for _ in range(n)]
        sync(self.device)
        per_step = (time.perf_counter() - start) / n
        if not timed:
            return per_step, None
        return per_step, {k: sum(p[k] for p in phases) / n for k in phases[0]}

    def loss_alone(self, n):
        """(c) C2VLLoss forward and backward on detached leaf Z (requires_grad) of one real batch, including the
        bank read and write -> [(forward s, backward s)] of n calls."""
        x, P, index = self.load()
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            Z = self.model(x)  # the dtype the loss sees in a real step (bf16 under autocast)
        Z = {m: z.detach().clone().requires_grad_(True) for m, z in Z.items()}
        calls = []
        for _ in range(n):
            for z in Z.values():
                z.grad = None
            self.loss_fn.zero_grad(set_to_none=True)
            sync(self.device)
            t0 = time.perf_counter()
            loss, _ = self.loss_fn(Z, P, index, EPOCH, self.cfg.epochs)
            sync(self.device)
            t1 = time.perf_counter()
            loss.backward()
            sync(self.device)
            calls.append((t1 - t0, time.perf_counter() - t1))
        self.loss_fn.zero_grad(set_to_none=True)
        return calls

    def close(self):
        self.iterator.close()
        del self.iterator, self.loader  # shuts the persistent workers down


def measure(trainer, steps, rounds, plain_rounds):
    """Alternating rounds of (plain steps,) instrumented steps and the isolated loss; the best round of each (of
    the isolated loss, a call of a few milliseconds on its own, the best call)."""
    # Warm-up: allocator, cuDNN/oneDNN kernel choices, loader workers.
    trainer.steps(2 if trainer.device.type == "cuda" else 1, timed=False)
    trainer.loss_alone(1)
    best = {"plain": float("inf"), "timed": (float("inf"), None), "loss": (float("inf"), float("inf"))}
    for _ in range(rounds):
        if plain_rounds:
            best["plain"] = min(best["plain"], trainer.steps(steps, timed=False)[0])
        per_step, phases = trainer.steps(steps, timed=True)
        if per_step < best["timed"][0]:
            best["timed"] = (per_step, phases)
        best["loss"] = min([best["loss"]] + trainer.loss_alone(max(steps, 10)), key=sum)  # short: its best call
    step, phases = best["timed"]
    loss_forward, loss_backward = best["loss"]
    shares = {"data": phases["data"],
              "encoder": phases["forward"] + max(phases["backward"] - loss_backward, 0.0),
              "loss": loss_forward + loss_backward}
    shares["other"] = step - sum(shares.values())
    throughput_step = best["plain"] if plain_rounds else step
    return {"samples_s": trainer.cfg.batch / throughput_step, "ms_step": 1e3 * throughput_step,
            **{k: 100.0 * v / step for k, v in shares.items()}}


def compiled_row(trainer, steps, rounds, precision, batches, eager):
    """The row of a Trainer(compiled=True) and its ratio to the eager samples/s of the same run; or, when compiling
    fails (no C++ compiler, an unsupported operation, ...), a line saying why."""
    started = time.perf_counter()
    try:
        result = measure(trainer, steps, rounds, plain_rounds=trainer.device.type == "cuda")  # warm-up compiles
    except Exception as error:  # torch.compile fails in many ways; each one only means: no compiled row
        return f"  compile skipped: {type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
    finally:
        trainer.close()
    return (row(trainer.cfg, trainer.device, precision, result, f"{batches} compiled")
            + f"\n  compiled / eager samples/s: x{result['samples_s'] / eager:.2f} (compiling and measuring took "
              f"{time.perf_counter() - started:.0f} s)")


# ----------------------------------------------------------------------------------------------------------------

HEADER = (f"{'config':12s} {'input':17s} {'device':6s} {'precision':9s} {'batch':>5s} {'T':>3s} {'samples/s':>10s} "
          f"{'ms/step':>9s} {'data %':>7s} {'encoder %':>9s} {'loss %':>7s} {'other %':>7s} {'recipe h':>8s}")


def recipe_hours(cfg, samples_s):
    """Projected wall time of the real recipe at this speed: 300 epochs over the training split, then the linear
    evaluation's one forward pass over train and test (bounded by a training step's cost; its 100 epochs on cached
    features take seconds)."""
    test = {"ntu60-sized": NTU60_XSUB_TEST, "ntu120-sized": NTU120_XSUB_TEST}.get(cfg.name, 0)
    return (RECIPE_EPOCHS * cfg.bank_rows + cfg.bank_rows + test) / samples_s / 3600


def row(cfg, device, precision, r, batches):
    return (f"{cfg.name:12s} {batches:17s} {device.type:6s} {precision:9s} {cfg.batch:5d} {cfg.frames:3d} "
            f"{r['samples_s']:10.1f} {r['ms_step']:9.1f} {r['data']:7.1f} {r['encoder']:9.1f} {r['loss']:7.1f} "
            f"{r['other']:7.1f} {recipe_hours(cfg, r['samples_s']):8.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--configs", default="demo,ntu60-sized", help="comma separated: demo, ntu60-sized, ntu120-sized")
    parser.add_argument("--inputs", default="loader,resident", help="train.py --input paths measured, comma separated")
    parser.add_argument("--compile", action="store_true",
                        help="also time train.py --compile (torch.compile of the encoder and heads) on the last "
                             "--inputs path, against the eager row of the same run")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default: 3 on CPU, 20 on CUDA)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating rounds; the best is kept (default: 2 on CPU, 3 on CUDA)")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch of ntu60-sized (default: 128 on CUDA, 16 on CPU); the demo keeps its preset 64")
    parser.add_argument("--frames", type=int, nargs="+", default=[50, 64], help="T values of ntu60-sized")
    parser.add_argument("--amp", default="auto", choices=("auto", "off", "on", "both"),
                        help="bf16 autocast rows: auto = fp32 and bf16 on CUDA, fp32 on CPU; on = bf16 only")
    parser.add_argument("--n-file", type=int, default=None,
                        help="rows of the synthetic ntu60-sized data file (default: 40,091 on CUDA, 2,048 on CPU); "
                             "the teacher bank always has 40,091")
    parser.add_argument("--workers", type=int, default=-1, help="DataLoader workers (-1: train.py's 0 CPU / 4 GPU)")
    parser.add_argument("--data-root", default=str(ROOT / "datasets"), help="where the demo split may be")
    parser.add_argument("--tmpdir", default=None, help="where the synthetic files go (default: the system's)")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    cuda = device.type == "cuda"
    steps = args.steps or (20 if cuda else 3)
    rounds = args.rounds or (3 if cuda else 2)
    batch = args.batch or (128 if cuda else 16)
    n_file = max(args.n_file or (NTU60_XSUB_TRAIN if cuda else 2048), batch)
    workers = args.workers if args.workers >= 0 else (4 if cuda else 0)
    amp_modes = {"auto": [False, True] if cuda else [False], "off": [False], "on": [True], "both": [False, True]}
    precisions = [("bf16" if a else "fp32", a) for a in amp_modes[args.amp]]
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(names) - {"demo", "ntu60-sized", "ntu120-sized"}
    if unknown:
        parser.error(f"--configs: unknown {sorted(unknown)}; use demo, ntu60-sized, ntu120-sized")
    inputs = [i.strip() for i in args.inputs.split(",") if i.strip()]

    demo_preset, real_preset = train.PRESETS["demo"], train.PRESETS["real"]
    print(f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if cuda else ''}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, DataLoader workers {workers}, "
          f"{steps} steps x {rounds} rounds (best round kept), epoch {EPOCH} (teacher bank filled), both modalities")
    results = []
    tmp_root = Path(tempfile.mkdtemp(prefix="bench_train_", dir=args.tmpdir))
    try:
        plans = []  # (BenchConfig, make_inputs)
        if "demo" in names:
            real_demo = demo_inputs(args.data_root)
            source = (f"real demo split {Path(args.data_root) / 'demo' / 'xsub'} and its prompt caches" if real_demo
                      else "synthetic 540-sample set (no demo prompt caches; `python train.py` makes them)")
            rows = len(real_demo[0]) if real_demo else DEMO_TRAIN
            dim = next(iter(real_demo[1].values())).shape[-1] if real_demo else DEMO_CLIP_DIM
            cfg = BenchConfig("demo", demo_preset["size"], demo_preset["batch_size"], demo_preset["frames"], dim, rows, rows,
                              demo_preset["optimizer"], demo_preset["lr"], demo_preset["weight_decay"],
                              demo_preset["epochs"])
            if real_demo:
                make = lambda r=real_demo: r  # noqa: E731
            else:
                make = lambda c=cfg: write_synthetic(tmp_root / "demo", c.file_rows, c.frames, c.dim)  # noqa: E731
            plans.append((cfg, make, source))
        for name, n_train in (("ntu60-sized", NTU60_XSUB_TRAIN), ("ntu120-sized", NTU120_XSUB_TRAIN)):
            if name not in names:
                continue
            for frames in args.frames:
                rows = min(n_file, n_train) if args.n_file or not cuda else n_train
                cfg = BenchConfig(name, real_preset["size"], batch, frames, 768, n_train, rows,
                                  real_preset["optimizer"], real_preset["lr"], real_preset["weight_decay"],
                                  real_preset["epochs"])
                gb = rows * 3 * frames * 25 * 2 * 4 / 1e9
                source = (f"synthetic: data file {rows:,} x (3, {frames}, 25, 2) float32 ({gb:.2f} GB), prompt "
                          f"features {rows:,} x 768 float16 x 2, teacher bank {n_train:,} rows")
                folder = tmp_root / f"{name}_T{frames}"
                make = lambda c=cfg, f=folder: write_synthetic(f, c.file_rows, c.frames, c.dim)  # noqa: E731
                plans.append((cfg, make, source))
        if not cuda and "ntu60-sized" in names and args.batch is None:
            print(f"ntu60-sized on CPU: batch {batch} (the real recipe's 128 would take minutes per step; "
                  f"--batch overrides)")

        for cfg, make, source in plans:
            free = shutil.disk_usage(tmp_root).free
            need = cfg.file_rows * 3 * cfg.frames * 25 * 2 * 4 * 1.1
            if need > free:
                raise SystemExit(f"{tmp_root}: {need / 1e9:.2f} GB needed for {cfg.name} T={cfg.frames}, "
                                 f"{free / 1e9:.2f} GB free")
            started = time.perf_counter()
            train_set, features, indices = make()
            print(f"{cfg.name} T={cfg.frames}: {source} (ready in {time.perf_counter() - started:.1f} s)")
            for precision, amp in precisions:
                speed = {}
                for batches in inputs:
                    trainer = Trainer(cfg, train_set, features, indices, device, amp, workers, batches=batches)
                    try:
                        result = measure(trainer, steps, rounds, plain_rounds=cuda)
                    finally:
                        trainer.close()
                        del trainer
                        if cuda:
                            torch.cuda.empty_cache()
                    speed[batches] = result["samples_s"]
                    results.append(row(cfg, device, precision, result, batches))
                    print(results[-1], flush=True)
                if {"loader", "resident"} <= set(speed):
                    results.append(f"  resident / loader samples/s: x{speed['resident'] / speed['loader']:.2f}")
                    print(results[-1], flush=True)
                if args.compile:
                    trainer = Trainer(cfg, train_set, features, indices, device, amp, workers, batches=inputs[-1],
                                      compiled=True)
                    results.append(compiled_row(trainer, steps, rounds, precision, inputs[-1], speed[inputs[-1]]))
                    print(results[-1], flush=True)
                    del trainer
            del train_set, features
            for folder in tmp_root.iterdir():  # one configuration's files on disk at a time
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    print()
    print(HEADER)
    print("\n".join(results))
    print("data: loader + prompt lookup + copies; encoder: encoder+heads fwd+bwd; loss: C2VLLoss fwd+bwd on "
          "detached Z (bank read/write included); other: optimizer step and the rest"
          + ("; samples/s from steps without phase synchronisation" if cuda else ""))


if __name__ == "__main__":
    main()
