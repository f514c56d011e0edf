"""Regenerate pocketstack/coverage/data/<service>.toml from the OpenStack api-ref sources.

Each file lists one entry per operation of the service's API reference: every `.. rest_method:: METHOD /path`
line of the api-ref's `.inc` files, with the title of its section, the action name for `.../action` operations,
the microversion range the text states and whether the text says the API was removed, citing the file it came
from. The api-ref is read from a clone or a bare git directory of the service's repository:

    python scripts/coverage_data.py compute=/path/to/nova identity=/path/to/keystone image=/path/to/glance \
        network=/path/to/neutron-lib volume=/path/to/cinder

Only the operation list is taken (method, path, title, version notes); no api-ref text is copied beyond titles.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "pocketstack" / "coverage" / "data"

# service -> (repository, the api-ref folders read, in order)
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "identity": ("openstack/keystone", ("api-ref/source/v3/", "api-ref/source/v3-ext/")),
    "image": ("openstack/glance", ("api-ref/source/versions/", "api-ref/source/v2/")),
    "network": ("openstack/neutron-lib", ("api-ref/source/v2/",)),
    "volume": ("openstack/cinder", ("api-ref/source/v3/",)),
    "compute": ("openstack/nova", ("api-ref/source/",)),
}
# compute reads the top folder only (nova's api-ref has no version subfolders)
FLAT = {"compute"}

REST_METHOD = re.compile(r"^\.\.\s+rest_method::\s*$|^\.\.\s+rest_method::\s+(\w+)\s+(\S+)\s*$")
CONTINUED = re.compile(r"^\s+(\w+)\s+(\S+)\s*$")  # the directive's argument on the next line
UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
SUBHEADINGS = {"request", "response", "response codes", "response parameters", "request example",
               "response example", "response examples", "request parameters", "examples", "example"}
MIN_VERSION = re.compile(
    r"(?:new in version|available (?:starting in the|since api microversion|since microversion|since version|"
    r"in microversion|with microversion|starting with microversion|from microversion))\s+`*(\d+\.\d+)"
    r"|\.\. note:: microversion (\d+\.\d+) or greater is required", re.I)
MAX_VERSION = re.compile(r"404 (?:starting from|from|after|beginning with) microversion\s+`*(\d+\.\d+)", re.I)
REMOVED = re.compile(r"\b(?:was|were|been) removed in (?:the |nova )?\d", re.I)
TITLE_ACTION = re.compile(r"\((?:the\s+)?`*([\w:.-]+?)`*\s+action\)", re.I)
TEXT_ACTION = re.compile(r"specify the ``([\w:.-]+)`` action", re.I)
PARAM = re.compile(r"^\s+-\s+([\w:.-]+)\s*:")


@dataclass
class Repo:
    """A clone or a bare git directory, read at HEAD."""

    path: Path

    @property
    def bare(self) -> bool:
        return not (self.path / "api-ref").is_dir()

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", f"--git-dir={self.path}", *args], check=True, capture_output=True,
                              text=True).stdout

    def commit(self) -> str:
        git_dir = self.path if self.bare else self.path / ".git"
        return subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()

    def files(self) -> list[str]:
        if self.bare:
            return self._git("ls-tree", "-r", "HEAD", "--name-only").splitlines()
        return sorted(str(p.relative_to(self.path)) for p in (self.path / "api-ref").rglob("*") if p.is_file())

    def read(self, name: str) -> str:
        return self._git("show", f"HEAD:{name}") if self.bare else (self.path / name).read_text()


def _collapse(lines: list[str]) -> str:
    return " ".join(" ".join(lines).split())


def _title(lines: list[str], at: int) -> str:
    """The heading nearest above line `at` that is not a Request/Response subheading."""
    for i in range(at - 1, 0, -1):
        if UNDERLINE.match(lines[i]) and lines[i - 1].strip() and not UNDERLINE.match(lines[i - 1]):
            text = lines[i - 1].strip()
            if text.lower() not in SUBHEADINGS:
                return text
    return ""


def _version(match: re.Match[str] | None) -> str | None:
    return next((g for g in match.groups() if g), None) if match else None


def _before(version: str) -> str:
    major, minor = version.split(".")
    return f"{major}.{int(minor) - 1}"


def _action(title: str, path: str, section: list[str]) -> str | None:
    """The action name: from the title, the text, or the first body parameter of the request."""
    if m := TITLE_ACTION.search(title):
        return m.group(1)
    if m := TEXT_ACTION.search(_collapse(section)):
        return m.group(1)
    in_request = False
    for line in section:
        if line.strip().lower() == "request":
            in_request = True
        elif (in_request and (m := PARAM.match(line)) and not line.rstrip().endswith("_path")
              and f"{{{m.group(1)}}}" not in path):
            return m.group(1)
    return None


def _marks(lines: list[str]) -> list[tuple[int, re.Match[str]]]:
    """(line, match of METHOD and path) of every rest_method directive, the argument on its line or the next."""
    marks = []
    for i, line in enumerate(lines):
        if m := REST_METHOD.match(line):
            if m.group(1) is None:
                m = CONTINUED.match(lines[i + 1]) if i + 1 < len(lines) else None
            if m is None:
                raise ValueError(f"a rest_method without METHOD /path at line {i + 1}")
            marks.append((i, m))
    return marks


def operations(name: str, text: str) -> list[dict[str, object]]:
    """Every operation of one api-ref file."""
    lines = text.splitlines()
    marks = _marks(lines)
    if not marks:
        return []
    first_title = next((i for i in range(marks[0][0], 0, -1) if UNDERLINE.match(lines[i])), marks[0][0])
    preamble = _collapse(lines[:max(first_title - 1, 0)])
    file_max = _version(MAX_VERSION.search(preamble))
    file_removed = bool(REMOVED.search(preamble))
    file_min = _version(MIN_VERSION.search(preamble))
    any_gone = "gone(410)" in text.replace(" ", "")
    ops: list[dict[str, object]] = []
    for n, (at, m) in enumerate(marks):
        title = _title(lines, at)
        start = next((i - 1 for i in range(at - 1, 0, -1) if UNDERLINE.match(lines[i])), at)
        end = marks[n + 1][0] if n + 1 < len(marks) else len(lines)
        section = lines[start:end]
        head = _collapse(lines[start:at + 12])
        op: dict[str, object] = {"method": m.group(1).upper(), "path": m.group(2), "title": title}
        if m.group(2).endswith("/action") and (action := _action(title, m.group(2), section)):
            op["action"] = action
        if lo := _version(MIN_VERSION.search(head)) or file_min:
            op["min_version"] = lo
        hi = _version(MAX_VERSION.search(head)) or file_max
        if hi:
            op["max_version"] = _before(hi)
        # a file the api-ref says was removed: its operations are, or only those answering 410 if some do
        gone = "gone(410)" in _collapse(section).replace(" ", "") or not any_gone
        if (file_removed and gone) or REMOVED.search(head) or "(removed)" in title.lower():
            op["removed"] = True
        op["source"] = name
        ops.append(op)
    return ops


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def render(service: str, repository: str, commit: str, ops: list[dict[str, object]]) -> str:
    out = [f"# The {service} API reference's operations, one [[operation]] per `.. rest_method::` line.",
           "# Generated by scripts/coverage_data.py from the api-ref sources; do not edit by hand.",
           f"service = {_toml(service)}", f"repository = {_toml(repository)}", f"commit = {_toml(commit)}", ""]
    for op in ops:
        out.append("[[operation]]")
        out.extend(f"{key} = {_toml(value)}" for key, value in op.items())
        out.append("")
    return "\n".join(out)


def generate(service: str, repo: Repo) -> str:
    repository, folders = SOURCES[service]
    names = sorted((n for n in repo.files() if n.endswith(".inc") and any(n.startswith(f) for f in folders)
                    and (service not in FLAT or "/" not in n.removeprefix(folders[0]))),
                   key=lambda n: (next(i for i, f in enumerate(folders) if n.startswith(f)), n))
    ops = [op for name in names for op in operations(name, repo.read(name))]
    return render(service, repository, repo.commit(), ops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", metavar="SERVICE=PATH", help="a clone or bare git dir per service")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    for item in args.checkouts:
        service, _, path = item.partition("=")
        if service not in SOURCES or not path:
            parser.error(f"expected SERVICE=PATH with SERVICE one of {', '.join(SOURCES)}: {item}")
        text = generate(service, Repo(Path(path)))
        (args.out / f"{service}.toml").write_text(text)
        print(f"{service}: {text.count(chr(10) + '[[operation]]')} operations -> {args.out / f'{service}.toml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
