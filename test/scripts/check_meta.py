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
check(not [f for f in os.listdir(os.path.join(ROOT, "sql")) if f.startswith("optout--")],
      "sql/ holds pg_regress tests only (no install or upgrade script)")
changelog = open(os.path.join(ROOT, "CHANGELOG.md")).read()
m = re.search(r"^## (\S+)", changelog, re.M)
check(m is not None and m.group(1) == meta["version"], "CHANGELOG.md's newest entry is the META.json version")

print(f"meta: {checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
