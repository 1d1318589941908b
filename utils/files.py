"""Files written atomically and arrays read without mapping them: the one place this project touches the disk.

- `atomic_path`: every file the project writes goes through it (temporary file in the same folder, then
  `move_into_place`), so a kill at any moment leaves the old file or the new one, never half of one; a file
  written over a long time (prompts.py's resumable cache) is finished with `move_into_place` itself;
- `write_text`, `write_json`, `save_torch`, `save_figure`, `save_npz`: the usual writes, made atomic;
- `refuse_to_overwrite`: a split is replaced only with --force;
- `file_sha256`: what a file holds (prompts.py: is a cache still the encoding of this checkpoint file?);
- `safe_load_pickle`: pickles of plain containers and numpy arrays only (loading a pickle can run code);
- `ArrayFile`, `NpyRowWriter`: (N, ...) arrays read and written row by row with preadv/pwrite, memory flat.
Not a paper concept: plumbing for data.py, prompts.py, train.py and evaluate.py.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np


def sample_name(name: str) -> str:
    """Canonical sample name: the key of prompt files, caches and the teacher bank (NTU names lose `.skeleton`)."""
    return name.removesuffix(".skeleton")


class DataNotFoundError(FileNotFoundError):
    """A split's files are missing; the message names the command that makes them."""


class DataFormatError(ValueError):
    """An array, label file or pickle is inconsistent (shape, labels, names); the message says what and where."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than plain containers, strings, numbers and numpy arrays."""


class SplitExistsError(FileExistsError):
    """A command would replace a split that exists; the message names --force."""


def refuse_to_overwrite(paths, force: bool) -> None:
    """SplitExistsError naming the first of `paths` that exists, unless `force` (nothing is written before this)."""
    existing = [Path(p) for p in paths if os.path.lexists(p)]
    if existing and not force:
        raise SplitExistsError(f"{existing[0].parent} already holds a split ({existing[0].name}); nothing was "
                               f"written: pass --force to replace it")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the same folder; move it into place at `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        move_into_place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def move_into_place(tmp, path) -> Path:
    """Rename the finished file `tmp` onto `path` (same folder, so readers see the old file or the new one)."""
    os.replace(tmp, path)
    return Path(path)


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _json_ready(value):
    """numpy and torch values, tuples and Paths -> plain JSON values; nan -> null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return _json_ready(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def write_json(path, obj, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(_json_ready(obj), indent=indent, allow_nan=False) + "\n")


def save_torch(obj, path) -> Path:
    """torch.save, atomically: a kill never leaves half a checkpoint."""
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_npz(path, **arrays) -> Path:
    """np.savez of named arrays, atomically (the temporary name keeps the .npz ending numpy insists on)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return Path(path)


def save_figure(fig, path, dpi: int = 110) -> Path:
    """A matplotlib Figure as PNG, atomically; the figure is closed."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    if fig.canvas.manager is not None:  # made by pyplot: release it there too
        import matplotlib.pyplot as plt
        plt.close(fig)
    return Path(path)


class NpyRowWriter:
    """Writes an (N, ...) float32 `.npy` row by row with os.pwrite, then renames it into place atomically.

    The file is created with np.lib.format.open_memmap (header + sparse body); rows are written with pwrite so
    the writer's memory stays flat however large the array. `write_padded` writes only each row's real frames,
    leaving the zero padding as holes in the file. If fewer than N rows were written (skipped samples), the
    header's shape is rewritten in place and the file truncated.
    """

    def __init__(self, path, shape, dtype=np.float32):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._commit = atomic_path(self.path)  # the one atomic writer: closing renames the file into place
        self.tmp = self._commit.__enter__()
        array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=self.dtype, shape=self.shape)
        self.offset = array.offset
        del array
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self.fd = os.open(self.tmp, os.O_RDWR)
        self.count = 0

    def write_rows(self, rows: np.ndarray) -> None:
        """Append a block of full rows (B, ...)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        assert rows.shape[1:] == self.shape[1:], (rows.shape, self.shape)
        if self.count + len(rows) > self.shape[0]:
            raise ValueError(f"{self.path}: more rows than the {self.shape[0]} allocated")
        os.pwrite(self.fd, rows.tobytes(), self.offset + self.count * self.row_bytes)
        self.count += len(rows)

    def write_padded(self, sample: np.ndarray) -> None:
        """Append one (C, t, ...) sample into a (C, T, ...) row with t <= T; frames t..T stay zero."""
        C, t = sample.shape[:2]
        frame_bytes = self.row_bytes // (self.shape[1] * self.shape[2])
        sample = np.ascontiguousarray(sample, dtype=self.dtype)
        for c in range(C):
            os.pwrite(self.fd, sample[c].tobytes(),
                      self.offset + self.count * self.row_bytes + c * self.shape[2] * frame_bytes)
        self.count += 1

    def close(self) -> Path:
        if self.count < self.shape[0]:
            _rewrite_npy_rows(self.fd, self.offset, (self.count,) + self.shape[1:], self.dtype)
            os.ftruncate(self.fd, self.offset + self.count * self.row_bytes)
        os.fsync(self.fd)
        os.close(self.fd)
        self._commit.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self._commit.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.abort() if kind else self.close()


def _rewrite_npy_rows(fd, offset, shape, dtype) -> None:
    """Rewrite the shape in a `.npy` header without changing its length (numpy pads headers for this)."""
    major = os.pread(fd, 8, 0)[6]
    length_bytes = 2 if major == 1 else 4
    header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)})
    space = offset - 8 - length_bytes
    if len(header) + 1 > space:
        raise ValueError("npy header has no room for the new shape")
    os.pwrite(fd, (header.ljust(space - 1) + "\n").encode("latin1"), 8 + length_bytes)


# --- Label files: `*_label.pkl`, as every codebase of the field writes them -------------------------------------

def write_labels(path, names: list[str], labels) -> None:
    """`*_label.pkl` as every codebase of the field reads it: pickled (list of names, list of int labels)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump((list(names), [int(y) for y in labels]), f, protocol=4)


def read_label_pkl(path) -> tuple[list[str], np.ndarray]:
    """`*_label.pkl` -> (names, labels int64 (N,)); checks the pair structure and integer labels."""
    if not Path(path).is_file():
        raise DataNotFoundError(f"label file {path} not found")
    content = safe_load_pickle(path)
    if not (isinstance(content, (tuple, list)) and len(content) == 2):
        raise DataFormatError(f"{path}: expected a pickled (sample names, labels) pair, found {type(content).__name__}"
                              + (f" of length {len(content)}" if isinstance(content, (tuple, list)) else ""))
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in content[0]]
    labels = np.asarray(content[1])
    if len(names) != len(labels):
        raise DataFormatError(f"{path}: {len(names)} names but {len(labels)} labels")
    return names, as_int_labels(labels, path)


def as_int_labels(labels, where) -> np.ndarray:
    """Labels as int64 (N,); floats are accepted only when they are whole numbers."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        as_int = labels.astype(np.int64) if np.issubdtype(labels.dtype, np.number) else None
        if as_int is None or not np.array_equal(as_int, labels):
            raise DataFormatError(f"{where}: labels must be integers, found dtype {labels.dtype}")
        labels = as_int
    return labels.astype(np.int64)


# Everything a pickle of plain containers, strings, numbers and numpy arrays refers to by name. Anything else
# (os.system, builtins.eval, subprocess.*, arbitrary classes...) could run code while loading and is refused.
_SAFE_GLOBALS = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"), ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes (the data of numpy arrays)
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in _SAFE_GLOBALS (numpy 1.x `numpy.core` names included)."""

    def find_class(self, module, name):
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        canonical = "numpy._core" + module[len("numpy.core"):] if module.startswith("numpy.core") else module
        if (canonical, name) not in _SAFE_GLOBALS:
            raise UnsafePickleError(f"the pickle refers to {module}.{name}")
        if canonical.startswith("numpy._core") and not hasattr(np, "_core"):
            canonical = "numpy.core" + canonical[len("numpy._core"):]  # numpy < 2
        return getattr(importlib.import_module(canonical), name)

    def persistent_load(self, pid):
        raise UnsafePickleError("the pickle uses persistent ids")


def safe_load_pickle(path):
    """Load a pickle of plain containers, str, int, float and numpy arrays; refuse anything else, clearly."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="latin1").load()
    except UnsafePickleError as error:
        raise UnsafePickleError(
            f"{path}: refused to load: {error}. Only plain containers, strings, numbers and numpy arrays are "
            f"accepted, because loading a pickle can run arbitrary code. If you trust this file, re-save its "
            f"contents as plain lists/dicts/arrays.") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DataFormatError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None


@dataclasses.dataclass
class ArrayFile:
    """An (N, ...) C-order array stored contiguously at `offset` in a file (`.npy`, or a stored `.npz` member).

    Rows are read with os.preadv into fresh buffers, so reading never maps the file into the process and the
    resident memory stays flat however large the array; `memmap()` gives the random-access view.
    """
    path: Path
    offset: int
    shape: tuple
    dtype: np.dtype

    @classmethod
    def open(cls, path) -> "ArrayFile":
        path = Path(path)
        if not path.is_file():
            raise DataNotFoundError(f"array file {path} not found")
        with open(path, "rb") as f:
            return cls._at(path, f, 0)

    @classmethod
    def _at(cls, path, f, start) -> "ArrayFile":
        f.seek(start)
        try:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = reader(f)
        except ValueError as error:
            raise DataFormatError(f"{path}: not a .npy array ({error})") from None
        if fortran_order or dtype.hasobject:
            raise DataFormatError(f"{path}: {'Fortran-order' if fortran_order else 'object'} arrays are not supported")
        array = cls(path, f.tell(), tuple(shape), dtype)
        expected = array.offset + int(np.prod(shape)) * dtype.itemsize
        if os.path.getsize(path) < expected and start == 0:
            raise DataFormatError(f"{path}: file is truncated ({os.path.getsize(path)} bytes, header says {expected})")
        return array

    @classmethod
    def npz_member(cls, path, key) -> "ArrayFile":
        """A member of an `.npz`: memory-mappable in place when stored; extracted once next to it if compressed."""
        path = Path(path)
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(f"{key}.npy")
            except KeyError:
                raise DataFormatError(f"{path}: no array {key!r}; it holds {archive.namelist()}") from None
            if info.compress_type != zipfile.ZIP_STORED:
                extracted = path.with_name(f"{path.stem}.{key}.npy")
                if not extracted.is_file() or extracted.stat().st_mtime < path.stat().st_mtime:
                    with atomic_path(extracted) as tmp, archive.open(info) as src, open(tmp, "wb") as dst:
                        while chunk := src.read(1 << 24):
                            dst.write(chunk)
                return cls.open(extracted)
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            name_length, extra_length = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            return cls._at(path, f, info.header_offset + 30 + name_length + extra_length)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as a new writable array."""
        stop = min(stop, self.shape[0])
        out = np.empty((max(stop - start, 0),) + self.shape[1:], dtype=self.dtype)
        row_bytes = out[0].nbytes if len(out) else 0
        view, position = memoryview(out).cast("B"), 0
        fd = self._fd()
        while position < len(view):
            n = os.preadv(fd, [view[position:]], self.offset + start * row_bytes + position)
            if n == 0:
                raise DataFormatError(f"{self.path}: file ends early (truncated) while reading rows {start}..{stop}")
            position += n
        return out

    def memmap(self) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape)

    def _fd(self) -> int:
        # One descriptor per process (DataLoader workers fork): preadv does not share a file position anyway.
        if getattr(self, "_pid", None) != os.getpid():
            self._descriptor, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._descriptor

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_descriptor", "_pid")}


def remove_part_arrays(folder, part: str, keep=()) -> None:
    """Delete `{part}_data*.npy` (rows and training caches) in a split folder, except the paths in `keep`: a
    replaced split's caches must not outlive its rows (a cache is reused while it is newer than its source)."""
    keep = {Path(p).resolve() for p in keep}
    for old in Path(folder).glob(f"{part}_data*.npy"):
        if old.resolve() not in keep:
            old.unlink()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, hex; hashed once per process while its size and modification time stay the same."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()
