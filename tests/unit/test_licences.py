"""Facteur's licence, and the licences of what it ships and installs, are declared and fit.

Facteur is AGPL-3.0-or-later: every vendored front-end file is named in
THIRD-PARTY-NOTICES.md, and every Python package installed for it declares a
licence that can be combined with the AGPL (GPL-2.0-only cannot).
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
NOTICES = ROOT / "THIRD-PARTY-NOTICES.md"

#: SPDX identifiers of licences that can be combined with AGPL-3.0-or-later.
FITTING = {
    "0BSD",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "CC0-1.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ISC",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-2.0",
    "PSF-2.0",
    "Python-2.0",
    "Unlicense",
    "Zlib",
}
#: How packages without an SPDX expression name those licences (trove classifiers, free text).
FITTING_NAMES = {
    "3-Clause BSD License",
    "Apache License 2.0",
    "Apache Software License",
    "BSD",
    "BSD License",
    "GNU Lesser General Public License v3 (LGPLv3)",
    "ISC License (ISCL)",
    "MIT",
    "MIT License",
    "Mozilla Public License 2.0 (MPL 2.0)",
    "New BSD",
    "Python Software Foundation License",
}


def notices_rows() -> list[list[str]]:
    """The rows of the vendored front-end libraries' table, as lists of cells."""
    text = NOTICES.read_text()
    section = text.split("## Front-end libraries", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def listed_files(cell: str) -> set[str]:
    return set(re.findall(r"`(static/[^`]+)`", cell))


def test_facteur_is_agpl_3_or_later():
    assert (
        (ROOT / "LICENSE")
        .read_text()
        .startswith(
            " " * 20
            + "GNU AFFERO GENERAL PUBLIC LICENSE\n"
            + " " * 23
            + "Version 3, 19 November 2007"
        )
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "AGPL-3.0-or-later"
    assert "GNU Affero General Public License" in (ROOT / "README.md").read_text()


def test_every_vendored_file_is_in_the_notices_and_every_listed_file_exists():
    rows = notices_rows()
    assert rows, "THIRD-PARTY-NOTICES.md lists no vendored library"
    listed = set().union(*(listed_files(row[-1]) for row in rows))
    vendored = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "static").rglob("*")
        if path.is_file() and path.parent.name == "vendor"
    }
    assert vendored - listed == set(), "vendored files missing from THIRD-PARTY-NOTICES.md"
    assert {path for path in listed if not (ROOT / path).is_file()} == set()


def test_each_vendored_library_names_its_version_licence_and_source_and_ships_its_licence():
    for library, version, licence, source, files in notices_rows():
        assert licence in FITTING, f"{library}: {licence} is not known to fit the AGPL"
        assert re.search(rf"npm `[@\w./-]+@{re.escape(version)}`", source), library
        assert any(path.endswith(".LICENSE") for path in listed_files(files)), (
            f"{library}: its licence text is not shipped beside it"
        )


def installed_requirements() -> dict[str, importlib.metadata.Distribution]:
    """Every package that installing Facteur (without extras) brings, by name."""
    found: dict[str, importlib.metadata.Distribution] = {}
    waiting = [
        Requirement(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    while waiting:
        requirement = waiting.pop()
        key = requirement.name.lower().replace("_", "-")
        if key in found and not requirement.extras:
            continue
        dist = importlib.metadata.distribution(requirement.name)
        found[key] = dist
        for line in dist.requires or []:
            needed = Requirement(line)
            extras = ["", *sorted(requirement.extras)]
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                waiting.append(needed)
    return found


def fits(dist: importlib.metadata.Distribution) -> bool:
    expression = dist.metadata.get("License-Expression")
    if expression:
        # Any one alternative of an OR will do; all the parts of an AND must fit.
        return any(
            set(re.findall(r"[\w.+-]+", alternative)) - {"AND", "WITH"} <= FITTING
            for alternative in re.split(r"\s+OR\s+", expression.strip("() "))
        )
    classifiers = [
        c.rsplit(" :: ", 1)[-1]
        for c in dist.metadata.get_all("Classifier") or []
        if c.startswith("License :: ")
    ]
    if classifiers:
        return any(name in FITTING_NAMES for name in classifiers)
    return (dist.metadata.get("License") or "").strip() in FITTING_NAMES | FITTING


def test_every_installed_python_dependency_has_a_licence_that_fits_the_agpl():
    unfit = sorted(name for name, dist in installed_requirements().items() if not fits(dist))
    assert unfit == [], "check these licences, then THIRD-PARTY-NOTICES.md"


def test_the_licence_check_refuses_gpl_2_only():
    class Metadata(dict):
        def get_all(self, name):
            return [self[name]] if name in self else None

    class Fake:
        def __init__(self, **metadata: str) -> None:
            self.metadata = Metadata(metadata)

    assert not fits(Fake(**{"License-Expression": "GPL-2.0-only"}))
    assert not fits(
        Fake(Classifier="License :: OSI Approved :: GNU General Public License v2 (GPLv2)")
    )
    assert fits(Fake(**{"License-Expression": "GPL-2.0-only OR MIT"}))
    assert fits(Fake(**{"License-Expression": "Apache-2.0 AND BSD-2-Clause"}))
    assert not fits(Fake(**{"License-Expression": "MIT AND GPL-2.0-only"}))
