"""The SSH key a clone reaches its DVC remote with, read before DVC uses it: a key that cannot be read (missing, a
folder, not a private key, a passphrase DVC is not given) is one line naming the key file, not asyncssh's
traceback or DVC's "unexpected error". No stage imports this module: `denselab.tools.access` and `denselab.tools.pull` do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from denselab.core.remote import run_dvc


def remote_settings(root: Path) -> dict[str, str]:
    """The default DVC remote's settings as DVC merges them (the project's config and `--local`'s), by key
    (`url`, `keyfile`, `passphrase`, ...); empty when no remote is set. Read through `dvc config --list`, DVC's
    public command, in one call."""
    out = run_dvc("config", "--list", cwd=root)
    if out.returncode != 0:
        return {}
    settings = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    name = settings.get("core.remote")
    prefix = f"remote.{name}."
    return {key.removeprefix(prefix): value for key, value in settings.items() if name and key.startswith(prefix)}


def key_problem(settings: Mapping[str, str]) -> str | None:
    """Why the remote's key file (`keyfile` of `settings`) cannot be used, in one line naming it; None when it
    can, or when the remote names no key file (DVC then tries the user's own keys and agent)."""
    keyfile = settings.get("keyfile")
    if not keyfile:
        return None
    try:
        import asyncssh
    except ImportError:  # no SSH support installed: DVC says so itself
        return None
    path = Path(os.path.expanduser(keyfile))
    passphrase = settings.get("passphrase")
    asks = settings.get("ask_passphrase", "").lower() in ("true", "1", "yes")
    try:
        asyncssh.read_private_key(path, passphrase)
    except FileNotFoundError:
        return f"{path}: no such key file (the remote's keyfile)"
    except OSError as exc:
        return f"{path}: cannot read this key file ({exc.strerror or exc})"
    except asyncssh.KeyEncryptionError:
        return f"{path}: the passphrase DVC is given for this key is not its passphrase"
    except asyncssh.KeyImportError as exc:
        if "passphrase" not in str(exc).lower():
            return f"{path}: not a private key ({exc}); the remote's keyfile must name the private half of the key"
        if asks:  # DVC asks for it at the terminal
            return None
        return (
            f"{path}: this key has a passphrase and DVC is not given it: use a key without one, or let DVC ask for "
            "it (`dvc remote modify --local <remote> ask_passphrase true`)"
        )
    return None
