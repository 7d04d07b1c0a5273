"""JUnit XML for the gate: one ``<testcase>`` per check, one ``<testsuite>`` per run.

Follows the de-facto JUnit schema CI systems read (Jenkins/GitLab/GitHub test reporters):
``testsuites > testsuite(name, tests, failures, skipped) > testcase(classname, name)`` with a
``<failure message=...>`` whose text carries the details (leak call stacks) or ``<skipped>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from memhil.gate.checks import FAIL, SKIP, GateResult


def junit_tree(result: GateResult) -> ET.ElementTree:
    root = ET.Element("testsuites", name="memhil gate", tests=str(len(result.checks)),
                      failures=str(result.count(FAIL)), skipped=str(result.count(SKIP)))
    suites: dict[str, ET.Element] = {}
    for check in result.checks:
        suite = suites.get(check.run)
        if suite is None:
            suite = suites[check.run] = ET.SubElement(root, "testsuite", name=f"memhil gate: {check.run}")
        case = ET.SubElement(suite, "testcase", classname=f"memhil.gate.{check.run}", name=check.name)
        if check.status == FAIL:
            failure = ET.SubElement(case, "failure", message=check.message, type="MemoryBudget")
            failure.text = check.message + ("\n\n" + check.details if check.details else "")
        elif check.status == SKIP:
            ET.SubElement(case, "skipped", message=check.message)
        else:
            ET.SubElement(case, "system-out").text = check.message
    for name, suite in suites.items():
        cases = [c for c in result.checks if c.run == name]
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(c.status == FAIL for c in cases)))
        suite.set("skipped", str(sum(c.status == SKIP for c in cases)))
        suite.set("errors", "0")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(result: GateResult, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(result).write(p, encoding="utf-8", xml_declaration=True)
    return p
