"""Reads JUnit reports the way real consumers do, and prints what they saw as JSON.

Run by tests/situations.rs as

    uv run --isolated --no-project --with junitparser==5.0.3 --with lxml==6.1.3 \
        python xtask/tests/junit_consumers.py FILE...

Each file is parsed twice: by lxml with a strict parser (no recovery, no huge-tree
allowance: a text node over 10,000,000 bytes is an error, as in every lxml-based reader),
and by junitparser, which uses lxml when it is installed (the stack of a widely used
GitHub Actions publisher). Totals are counted from the test cases as junitparser counts
them (`update_statistics`), next to what the attributes declare. Each earlier attempt of a
retried test (flakyFailure, flakyError, rerunFailure, rerunError) is validated alone, by
lxml's XML Schema (libxml2's, as xmllint's), against tests/data/junit-reruns.xsd: Maven
surefire's definition of those elements. Any parse error exits 1 with the file and lxml's
message on stderr.
"""

import json
import sys
from pathlib import Path

import junitparser
import junitparser.junitparser as junitparser_module
from junitparser import Error, Failure, JUnitXml, Skipped
from lxml import etree

KINDS = ((Failure, "failure"), (Error, "error"), (Skipped, "skipped"))
RERUN_TAGS = ("flakyFailure", "flakyError", "rerunFailure", "rerunError")
RERUN_SCHEMA = Path(__file__).parent / "data" / "junit-reruns.xsd"


def strict_parse(path):
    parser = etree.XMLParser(recover=False, huge_tree=False, resolve_entities=False)
    return etree.parse(path, parser)


def declared(element):
    """The totals a suite's (or the root's) attributes claim, as integers when present."""
    out = {}
    for key in ("tests", "failures", "errors", "skipped"):
        value = element.get(key)
        out[key] = int(value) if value is not None else None
    return out


def longest_text(tree):
    """The longest text node or attribute value in the file, in UTF-8 bytes."""
    longest = 0
    for element in tree.iter():
        for text in (element.text, element.tail, *element.attrib.values()):
            if text:
                longest = max(longest, len(text.encode("utf-8")))
    return longest


def reruns(tree):
    """Every earlier attempt of a retried test, with what the schema says of it."""
    schema = etree.XMLSchema(etree.parse(str(RERUN_SCHEMA)))
    out = []
    for element in tree.iter(*RERUN_TAGS):
        alone = etree.fromstring(etree.tostring(element, with_tail=False))
        valid = schema.validate(alone)
        out.append(
            {
                "tag": element.tag,
                "type": element.get("type"),
                "schema_errors": [] if valid else [str(e) for e in schema.error_log],
            }
        )
    return out


def read_case(case):
    results = []
    for entry in case.result:
        kind = next((name for cls, name in KINDS if isinstance(entry, cls)), "other")
        results.append(
            {
                "kind": kind,
                "type": entry.type,
                "message": entry.message,
                "text_bytes": len((entry.text or "").encode("utf-8")),
            }
        )
    return {
        "name": case.name,
        "classname": case.classname,
        "file": case._elem.get("file"),
        "line": case._elem.get("line"),
        "time": case._elem.get("time"),
        "results": results,
        "system_out_bytes": len((case.system_out or "").encode("utf-8")),
        "system_err_bytes": len((case.system_err or "").encode("utf-8")),
    }


def read_file(path):
    tree = strict_parse(path)
    root = tree.getroot()
    if root.tag != "testsuites":
        raise ValueError(f"the root element is <{root.tag}>, not <testsuites>")

    xml = JUnitXml.fromfile(path)
    root_declared = declared(xml._elem)
    suites = []
    for suite in xml:
        suite_declared = declared(suite._elem)
        properties = {p.name: p.value for p in suite.properties()}
        cases = [read_case(case) for case in suite]
        suite.update_statistics()
        suites.append(
            {
                "name": suite.name,
                "tests": suite.tests,
                "failures": suite.failures,
                "errors": suite.errors,
                "skipped": suite.skipped,
                "declared": suite_declared,
                "properties": properties,
                "cases": cases,
            }
        )
    xml.update_statistics()
    return {
        "path": path,
        "tests": xml.tests,
        "failures": xml.failures,
        "errors": xml.errors,
        "skipped": xml.skipped,
        "declared": root_declared,
        "suites": suites,
        "longest_text_bytes": longest_text(tree),
        "reruns": reruns(tree),
    }


def main(paths):
    if not paths:
        print("usage: junit_consumers.py FILE...", file=sys.stderr)
        return 2
    if junitparser_module.etree is not etree:
        print(
            f"junitparser {junitparser.version} is not using lxml "
            f"(it uses {junitparser_module.etree.__name__})",
            file=sys.stderr,
        )
        return 2
    files = []
    for path in paths:
        try:
            files.append(read_file(path))
        except (etree.XMLSyntaxError, ValueError, junitparser.JUnitXmlError) as err:
            print(f"{path}: not a readable JUnit report: {err}", file=sys.stderr)
            return 1
    json.dump(
        {
            "junitparser": junitparser.version,
            "lxml": ".".join(map(str, etree.LXML_VERSION)),
            "files": files,
        },
        sys.stdout,
        indent=1,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
