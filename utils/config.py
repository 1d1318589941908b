"""One way from a dataclass of settings to command-line flags, used by every entry point.

A field's metadata carries its help text (and, where the value is one of a few words, its choices); every field
becomes one flag of the same name, spelled both `--a_b` and `--a-b`; booleans get `--x/--no-x`. A reader follows
a value from the command line to its use by searching for the field's name. The few flags that need more (a list
of values, an older alias, a positional argument) say so in their `setting(...)`.
"""
import argparse
from dataclasses import field, fields


def setting(default, help, choices=None, kind=None, *, aliases=(), nargs=None, const=None, required=False,
            positional=False):
    """A dataclass field with its help text; `kind` is the argparse type when the default is None. `aliases`: older
    names the flag also answers to; `nargs`, `const`, `required` as in argparse (a list default is a tuple);
    `positional`: an argument without `--`."""
    return field(default=default, metadata={"help": help, "choices": choices, "type": kind, "aliases": aliases,
                                            "nargs": nargs, "const": const, "required": required,
                                            "positional": positional})


def add_arguments(parser, cls, skip=(), none_means=None, choices=None):
    """One flag per field of the dataclass `cls` (same name, same default, help from the field); `none_means` is
    what a None default stands for in the help (e.g. "the preset"), else the field's help says it. `choices`:
    {field: allowed values} for fields whose values another module names (a utils dataclass cannot import it)."""
    for f in fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        many = meta.get("nargs") in ("+", "*")  # a list: the default tuple becomes the list argparse would give
        default = list(f.default) if many and f.default is not None else f.default
        kind = meta.get("type") or type(default[0] if many else default)
        shown = none_means if f.default is None else " ".join(map(str, default)) if many else default
        help = meta.get("help", "") + (f" (default: {shown})" if shown is not None else "")
        if meta.get("positional"):
            parser.add_argument(f.name, type=kind, help=help)
            continue
        names = (f.name, *meta.get("aliases", ()))
        flags = list(dict.fromkeys(s for n in names for s in (f"--{n}", f"--{n.replace('_', '-')}")))  # --a_b, --a-b
        if isinstance(f.default, bool) or meta.get("type") is bool:  # --x / --no-x (None: left to a preset)
            parser.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help)
        else:
            parser.add_argument(*flags, dest=f.name, type=kind, default=default,
                                choices=(choices or {}).get(f.name, meta.get("choices")),
                                nargs=meta.get("nargs"), const=meta.get("const"), required=meta.get("required", False),
                                help=help)
    return parser


def from_args(cls, args, **overrides):
    """The dataclass `cls` from an argparse namespace filled by add_arguments."""
    return cls(**{**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}, **overrides})


def check_choices(config, choices=None):
    """Raise ValueError naming the flag when a field with choices (its own, or `choices` {field: allowed values})
    holds another value (None: left to a preset)."""
    for f in fields(config):
        allowed, value = (choices or {}).get(f.name, f.metadata.get("choices")), getattr(config, f.name)
        values = value if f.metadata.get("nargs") in ("+", "*") and value is not None else [value]  # a list flag
        if allowed is not None and any(v not in allowed for v in values) and not (value is None and f.default is None):
            raise ValueError(f"--{f.name.replace('_', '-')} must be one of {tuple(allowed)}, "
                             f"got {getattr(config, f.name)!r}")


def check_positive(config, names) -> None:
    """Raise ValueError naming the flag when one of the numeric settings `names` is <= 0 (None: left unset)."""
    for name in names:
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(config, name)}")


def comma_list(kind, text, name) -> tuple:
    """The values of a comma-separated flag (`--name 1,10,20`) as a tuple of `kind`; ValueError naming the flag."""
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--{name} expects a comma-separated list, got {text!r}") from None


def fill_unset(config, preset: dict, **fields) -> None:
    """Every setting of `config` left at None takes the preset's value ({data_root} and other `fields` filled in)."""
    for name, value in preset.items():
        if getattr(config, name) is None:
            setattr(config, name, value.format(**fields) if isinstance(value, str) else value)


def preset_table(presets: dict, titles: dict = None) -> str:
    """Presets {name: {setting: value}} as the table `--help` ends with, one column per preset."""
    titles = {name: (titles or {}).get(name, name) for name in presets}
    settings = list(dict.fromkeys(s for preset in presets.values() for s in preset))
    w = {n: max(len(titles[n]), *(len(str(v)) for v in presets[n].values())) for n in presets}
    rows = [f"  {'setting':14s} " + " ".join(f"{titles[n]:>{w[n]}s}" for n in presets)]
    rows += [f"  {s:14s} " + " ".join(f"{str(presets[n].get(s, '')):>{w[n]}s}" for n in presets) for s in settings]
    return "settings left unset take the dataset's preset:\n" + "\n".join(rows)

