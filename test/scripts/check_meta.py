#!/usr/bin/env python3
"""Checks META.json against the PGXN Meta Spec 1.0.0 and the rest of the tree.

The spec's required keys and types, a semantic version, a known license, and
that META.json, optout.control, CHANGELOG.md and the install script agree on
the version. Prints one "ok - ..." or "not ok - ..." line per check and
"meta: N passed, N failed"; exits non-zero on a failure.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+)?$")
LICENSES = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd",
            "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit",
            "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay",
            "sun", "zlib", "open_source", "restricted", "unrestricted", "unknown"}
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    print(("ok - " if cond else "not ok - ") + what)
    if not cond:
        failures.append(what)


meta = json.load(open(os.path.join(ROOT, "META.json")))
for key, typ in [("name", str), ("abstract", str), ("maintainer", (str, list)), ("license", (str, list, dict)),
                 ("provides", dict), ("meta-spec", dict), ("version", str)]:
    check(isinstance(meta.get(key), typ), f"META.json has required key {key!r} of the right type")
check(meta.get("meta-spec", {}).get("version") == "1.0.0", "meta-spec version is 1.0.0")
check(bool(SEMVER.match(meta.get("version", ""))), "version is a semantic version")
check(meta.get("license") in LICENSES, "license is one the spec names")
check(meta.get("release_status", "stable") in {"stable", "testing", "unstable"}, "release_status is valid")
check(re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", meta.get("name", "")) is not None, "name is valid")
for ext, p in meta.get("provides", {}).items():
    check(isinstance(p, dict) and "version" in p and "abstract" in p, f"provides.{ext} has version and abstract")
    check(bool(SEMVER.match(p.get("version", ""))), f"provides.{ext}.version is a semantic version")
    if "file" in p:
        check(os.path.exists(os.path.join(ROOT, p["file"])), f"provides.{ext}.file exists")
        # The file that defines the extension: the list of SQL sources the
        # install script is assembled from (src/sql/optout.sql).
        check(p["file"] == f"src/sql/{ext}.sql",
              f"provides.{ext}.file is src/sql/{ext}.sql, the sources of the install script")
    check(p.get("version") == meta.get("version"), f"provides.{ext}.version equals the distribution version")

# The rest of the spec's structure: prereqs by phase and relationship, with
# version ranges; resources, tags, no_index, generated_by of their types.
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}
RANGE = re.compile(r"^\s*(?:(?:[<>]=?|==|!=)\s*)?(0|[1-9]\d*)(\.\d+){0,2}\s*$")
prereqs = meta.get("prereqs", {})
check(isinstance(prereqs, dict) and set(prereqs) <= PHASES, "prereqs' phases are among " + ", ".join(sorted(PHASES)))
for phase, rels in prereqs.items():
    check(isinstance(rels, dict) and set(rels) <= RELATIONS, f"prereqs.{phase}'s relationships are valid")
    for rel, reqs in (rels.items() if isinstance(rels, dict) else []):
        for name, rng in (reqs.items() if isinstance(reqs, dict) else []):
            check(isinstance(rng, (str, int)) and all(RANGE.match(part) for part in str(rng).split(",")),
                  f"prereqs.{phase}.{rel}.{name} is a version range")
check(isinstance(meta.get("tags", []), list) and all(isinstance(t, str) and 0 < len(t) < 256 for t in meta.get("tags", [])),
      "tags is a list of short strings")
check(isinstance(meta.get("resources", {}), dict), "resources, if present, is an object")
check(isinstance(meta.get("no_index", {}), dict), "no_index, if present, is an object")
check(isinstance(meta.get("generated_by", ""), str), "generated_by, if present, is a string")
check(all(isinstance(p, dict) and set(p) <= {"file", "version", "abstract", "docfile"}
          for p in meta.get("provides", {}).values()), "provides' entries have only file, version, abstract, docfile")
for ext, p in meta.get("provides", {}).items():
    if "docfile" in p:
        check(os.path.exists(os.path.join(ROOT, p["docfile"])), f"provides.{ext}.docfile exists")

# prereqs: PostgreSQL 15 or later, up to the newest major version CI tests.
pg = meta.get("prereqs", {}).get("runtime", {}).get("requires", {}).get("PostgreSQL", "")
check(pg == ">= 15.0.0, < 19.0.0", "prereqs: PostgreSQL >= 15.0.0, < 19.0.0 (the versions of compat.hpp and CI)")

control = open(os.path.join(ROOT, "optout.control")).read()
m = re.search(r"default_version\s*=\s*'([^']+)'", control)
check(m is not None and m.group(1) == meta["version"], "optout.control default_version equals META.json version")
# CREATE EXTENSION installs the version from the script the Makefile
# assembles from src/sql/ (every source src/sql/optout.sql lists must exist);
# upgrade scripts, in src/sql/upgrade/, lead only to the version.
srcdir = os.path.join(ROOT, "src", "sql")
listed = re.findall(r"^\\ir (\S+)$", open(os.path.join(srcdir, "optout.sql")).read(), re.M)
check(len(listed) > 0 and all(os.path.exists(os.path.join(srcdir, f)) for f in listed),
      "src/sql/optout.sql lists the SQL sources, and each exists")
updir = os.path.join(srcdir, "upgrade")
for f in (os.listdir(updir) if os.path.isdir(updir) else []):
    m = re.match(r"^optout--([^-]+)--([^-]+)\.sql$", f)
    check(m is not None, f"src/sql/upgrade/{f} is named optout--FROM--TO.sql")
# Every released version (its install script kept in test/upgrade/optout--X.sql)
# has a chain of upgrade scripts to the default version: without one, a
# database of that release could not ALTER EXTENSION optout UPDATE.
edges = {}
for f in (os.listdir(updir) if os.path.isdir(updir) else []):
    m = re.match(r"^optout--([^-]+)--([^-]+)\.sql$", f)
    if m:
        edges.setdefault(m.group(1), set()).add(m.group(2))
default = meta["version"]
releasedir = os.path.join(ROOT, "test", "upgrade")
released = sorted(m.group(1) for m in (re.match(r"^optout--([^-]+)\.sql$", f)
                                       for f in (os.listdir(releasedir) if os.path.isdir(releasedir) else [])) if m)
check(len(released) > 0, "test/upgrade keeps the install script of at least one release")
for v in released:
    seen, todo = {v}, [v]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    check(v == default or default in seen,
          f"released {v}: upgrade scripts in src/sql/upgrade/ lead to {default}")
    check(v != default, f"released {v} is not the tree's version {default} (bump it after a release)")
check(not [f for f in os.listdir(os.path.join(ROOT, "sql")) if f.startswith("optout--")],
      "sql/ holds pg_regress tests only (no install or upgrade script)")
changelog = open(os.path.join(ROOT, "CHANGELOG.md")).read()
m = re.search(r"^## (\S+)", changelog, re.M)
check(m is not None and m.group(1) == meta["version"], "CHANGELOG.md's newest entry is the META.json version")

# The Debian package (debian/) is of the same upstream version.
deb = os.path.join(ROOT, "debian", "changelog")
if os.path.exists(deb):
    m = re.match(r"^optout \(([^)-]+)-[^)]+\)", open(deb).read())
    check(m is not None and m.group(1) == meta["version"], "debian/changelog's newest entry is the META.json version")

print(f"meta: {checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
