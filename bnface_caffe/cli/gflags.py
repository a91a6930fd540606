"""Command lines read the way Google's gflags reads them (Caffe's tools use gflags).

- `-f v`, `-f=v`, `--f v`, `--f=v` all set flag f; a dash inside a name counts as an
  underscore (`--sigint-effect` is `-sigint_effect`); the last setting wins.
- A boolean flag takes no separate value: `-f` sets it, `-nof` clears it, `-f=VALUE` takes
  true/false, t/f, yes/no, y/n, 1/0 (any case).
- int32 values are decimal, or hexadecimal after 0x, and must fit in 32 bits.
- Flags may come before, between or after the other arguments; `--` ends the flags.
A bad flag raises UserError with one line, as gflags prints one line and exits.
"""
from dataclasses import dataclass
import textwrap

from ..errors import UserError

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


@dataclass
class Flag:
    name: str
    kind: str          # "string", "int32" or "bool"
    default: object
    help: str


def parse(argv, flags):
    """(positional arguments, {flag name: value}) from argv; `flags` lists the Flags known."""
    table = {f.name: f for f in flags}
    values = {f.name: f.default for f in flags}
    positional = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        body = arg[2:] if arg.startswith("--") else arg[1:]
        spelled, has_value, value = body.partition("=")
        name = spelled.replace("-", "_")
        flag = table.get(name)
        if flag is None and name.startswith("no") and name[2:] in table:
            negated = table[name[2:]]
            if negated.kind != "bool":
                raise UserError(f"-{spelled}: '-no' only clears boolean flags, and "
                                f"-{negated.name} is a {negated.kind} flag; give it a value")
            if has_value:
                raise UserError(f"{arg}: '-no{negated.name}' takes no value")
            values[negated.name] = False
            continue
        if flag is None:
            raise UserError(f"unknown command line flag '{spelled}'")
        if flag.kind == "bool":
            values[flag.name] = _bool(flag, value) if has_value else True
        else:
            if not has_value:
                if i >= len(argv):
                    raise UserError(f"flag '-{spelled}' is missing its argument "
                                    f"({flag.help.rstrip('.')})")
                value = argv[i]
                i += 1
            values[flag.name] = _int32(flag, value) if flag.kind == "int32" else value
    return positional, values


def _bool(flag, text):
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise UserError(f"illegal value '{text}' specified for bool flag '{flag.name}'; "
                    "use true or false")


def _int32(flag, text):
    body = text.strip()
    negative = body.startswith("-")
    digits = body[1:] if body[:1] in "+-" else body
    try:
        if digits[:2] in ("0x", "0X") and not negative:
            number = int(digits, 16)
        else:
            number = int(body, 10)
    except ValueError:
        number = None
    if number is None or not -2**31 <= number < 2**31:
        raise UserError(f"illegal value '{text}' specified for int32 flag '{flag.name}'; "
                        "give a whole number")
    return number


def describe(flags, source):
    """gflags' listing of flags: `-name (help) type: T default: D`, wrapped at 80."""
    lines = [f"  Flags from {source}:"]
    for f in sorted(flags, key=lambda f: f.name):
        default = f'"{f.default}"' if f.kind == "string" else str(f.default).lower()
        text = f"-{f.name} ({f.help}) type: {f.kind} default: {default}"
        lines.extend(textwrap.wrap(text, width=80, initial_indent="    ",
                                   subsequent_indent="      ", break_on_hyphens=False))
    return "\n".join(lines)
