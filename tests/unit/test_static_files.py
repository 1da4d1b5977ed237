"""Static files survive production's collectstatic: the manifest storage stops on
any reference to a file that is not shipped, and then every page answers 500."""

import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.deployment import dockerfile_manage_command

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "static"
SOURCE_MAP = re.compile(r"[#@][ \t]*sourceMappingURL=([^\s*]+)")


def load_vendor_script():
    loader = importlib.machinery.SourceFileLoader("vendor_script", str(ROOT / "scripts/vendor"))
    spec = importlib.util.spec_from_loader("vendor_script", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def static_files() -> list[Path]:
    return [path for path in STATIC.rglob("*") if path.is_file()]


def test_no_static_file_names_a_source_map_that_is_not_shipped():
    missing = []
    for path in static_files():
        for reference in SOURCE_MAP.findall(path.read_text(errors="replace")):
            if reference.startswith("data:"):
                continue
            if not (path.parent / reference.split("?")[0]).is_file():
                missing.append(f"{path.relative_to(ROOT)} names {reference}")
    assert missing == []


def test_the_static_files_are_scanned():
    names = {path.name for path in static_files()}
    assert {"htmx-2.0.11.min.js", "trix-2.1.19.umd.min.js", "trix-2.1.19.css"} <= names


@pytest.mark.parametrize(
    "comment",
    [
        b"//# sourceMappingURL=trix.umd.min.js.map\n",
        b"//@ sourceMappingURL=old.js.map\n",
        b"/*# sourceMappingURL=trix.css.map */\n",
        b"//# sourceMappingURL=last-line.js.map",
    ],
)
def test_vendoring_strips_source_map_comments(comment):
    vendor = load_vendor_script()
    stripped = vendor.strip_source_maps(b"code();\n" + comment)
    assert stripped == b"code();\n"
    assert SOURCE_MAP.search(stripped.decode()) is None


def test_vendoring_keeps_code_that_mentions_source_maps():
    vendor = load_vendor_script()
    code = b'const hint = "sourceMappingURL=";\nrun(); //# sourceMappingURL=x.map\n'
    assert vendor.strip_source_maps(code) == code


def test_vendored_names_carry_the_version():
    vendor = load_vendor_script()
    assert vendor.vendored_name("dist/trix.umd.min.js", "2.1.19") == "trix-2.1.19.umd.min.js"
    assert vendor.vendored_name("dist/htmx.min.js", "2.0.11") == "htmx-2.0.11.min.js"
    assert vendor.vendored_name("dist/trix.css", "2.1.19") == "trix-2.1.19.css"


def test_vendoring_copies_the_files_by_version_and_the_licence_beside_them(tmp_path):
    vendor = load_vendor_script()
    package = tmp_path / "package"
    (package / "dist").mkdir(parents=True)
    (package / "dist/editor.umd.min.js").write_bytes(b"run();\n//# sourceMappingURL=x.map\n")
    (package / "dist/editor.css").write_bytes(b"a{}\n/*# sourceMappingURL=editor.css.map */\n")
    (package / "LICENSE").write_text("MIT License\n")
    destinations = {".js": tmp_path / "js", ".css": tmp_path / "css"}
    for folder in destinations.values():
        folder.mkdir()

    written = vendor.copy_files(
        package, "1.2.3", ["dist/editor.umd.min.js", "dist/editor.css"], destinations
    )

    assert written == [
        tmp_path / "js/editor-1.2.3.umd.min.js",
        tmp_path / "css/editor-1.2.3.css",
        tmp_path / "js/editor-1.2.3.LICENSE",
    ]
    assert (tmp_path / "js/editor-1.2.3.umd.min.js").read_bytes() == b"run();\n"
    assert (tmp_path / "css/editor-1.2.3.css").read_bytes() == b"a{}\n"
    assert (tmp_path / "js/editor-1.2.3.LICENSE").read_text() == "MIT License\n"


def test_vendoring_refuses_a_package_without_a_licence(tmp_path):
    vendor = load_vendor_script()
    (tmp_path / "package/dist").mkdir(parents=True)
    (tmp_path / "package/dist/lib.js").write_text("run();\n")
    (tmp_path / "js").mkdir()
    with pytest.raises(SystemExit, match="no licence"):
        vendor.copy_files(tmp_path / "package", "1.0.0", ["dist/lib.js"], {".js": tmp_path / "js"})


def test_collectstatic_with_the_manifest_storage_succeeds(tmp_path):
    """What the Dockerfile runs, with production settings: no debug, plain keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACTEUR_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="webmail.settings",
        FACTEUR_SECRET_KEY="collectstatic-test",
        FACTEUR_CREDENTIALS_KEYS="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        FACTEUR_STATIC_ROOT=str(tmp_path),
    )
    # The image's `python` is this interpreter.
    command = dockerfile_manage_command("collectstatic")
    result = subprocess.run(
        [sys.executable, *command[1:], "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert re.search(r'"js/vendor/trix-2\.1\.19\.umd\.min\.[0-9a-f]{12}\.js"', manifest)
