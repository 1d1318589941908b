"""One way from a dataclass of settings to command-line flags, used by every entry point.

A field's metadata carries its help text (and, where the value is one of a few words, its choices); every field
becomes one flag of the same name, spelled both `--a_b` and `--a-b`; booleans get `--x/--no-x`. A reader follows
a value from the command line to its use by searching for the field's name.
"""
import argparse
from dataclasses import field, fields


def setting(default, help, choices=None, kind=None):
    """A dataclass field with its help text; `kind` is the argparse type when the default is None."""
    return field(default=default, metadata={"help": help, "choices": choices, "type": kind})


def add_arguments(parser, cls, skip=()):
    """One flag per field of the dataclass `cls` (same name, same default, help from the field)."""
    for f in fields(cls):
        if f.name in skip:
            continue
        flags = sorted({f"--{f.name}", f"--{f.name.replace('_', '-')}"}, reverse=True)  # --a-b and --a_b alike
        meta = f.metadata
        shown = "the preset" if f.default is None else f.default
        help = f"{meta.get('help', '')} (default: {shown})"
        if isinstance(f.default, bool):
            parser.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help)
        else:
            parser.add_argument(*flags, dest=f.name, type=meta.get("type") or type(f.default), default=f.default,
                                choices=meta.get("choices"), help=help)
    return parser


def from_args(cls, args, **overrides):
    """The dataclass `cls` from an argparse namespace filled by add_arguments."""
    return cls(**{**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}, **overrides})


def check_choices(config):
    """Raise ValueError naming the flag when a field with choices holds another value (None: left to a preset)."""
    for f in fields(config):
        allowed, value = f.metadata.get("choices"), getattr(config, f.name)
        if allowed is not None and value not in allowed and not (value is None and f.default is None):
            raise ValueError(f"--{f.name.replace('_', '-')} must be one of {tuple(allowed)}, "
                             f"got {getattr(config, f.name)!r}")
