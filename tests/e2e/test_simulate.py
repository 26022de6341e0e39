"""End-to-end: `postconn simulate` on the shipped scenarios, read the way an
administrator would -- the printed timeline and summary, and the SVG chart
(which must parse as XML and show both runs and the NDR)."""
import os
import re
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

POSTCONN = os.environ["POSTCONN"]
SCENARIOS = os.path.join(os.environ["POSTCONN_SOURCE_DIR"], "conf", "scenarios")
SVG = "{http://www.w3.org/2000/svg}"


def simulate(scenario, *args):
    """Runs the simulator in a scratch directory: (exit code, stdout,
    stderr, path of the chart)."""
    scratch = tempfile.TemporaryDirectory()
    chart = os.path.join(scratch.name, "chart.svg")
    done = subprocess.run([POSTCONN, "simulate", scenario, "--svg", chart, *args],
                          capture_output=True, text=True, timeout=120, cwd=scratch.name)
    result = (done.returncode, done.stdout, done.stderr, chart)
    if os.path.exists(chart):
        with open(chart) as f:
            result = result + (f.read(),)
    else:
        result = result + ("",)
    scratch.cleanup()
    return result


def run_section(output, name):
    """The text of one run, from its heading to the next."""
    match = re.search(r"^== run %s\b.*?(?=^== run |^chart: )" % re.escape(name), output,
                      re.S | re.M)
    assert match, "no run %s in:\n%s" % (name, output)
    return match.group(0)


class Simulate(unittest.TestCase):
    def test_kb277831_ndr_after_24_hours_enforced_and_never_in_legacy_mode(self):
        kept = tempfile.TemporaryDirectory()
        self.addCleanup(kept.cleanup)
        code, out, err, _, svg = simulate(os.path.join(SCENARIOS, "kb277831.toml"),
                                          "--keep", kept.name)
        self.assertEqual(code, 0, err)
        enforce = run_section(out, "enforce")
        self.assertIn("1d 00:00:00   m1 at sales: bounced, NDR to the sender", enforce)
        row = re.search(r"^  m1 +sales +(\S+ \S+) +(\S+) +(\S+ \S+) +(\d+) ", enforce, re.M)
        self.assertTrue(row, enforce)
        self.assertEqual(row.groups(), ("0d 00:00:00", "-", "1d 00:00:00", "145"))
        # The NDR the sender got counts the attempts the summary counts.
        inbox = os.path.join(kept.name, "enforce", "postoffices", "support", "ann", "new")
        [ndr] = os.listdir(inbox)
        with open(os.path.join(inbox, ndr)) as f:
            self.assertIn("\n145 attempts were made over 1d 0h.\n", f.read())
        legacy = run_section(out, "legacy")
        self.assertNotIn("bounced", legacy)
        row = re.search(r"^  m1 +sales +(\S+ \S+) +(\S+) +(\S+) +(\d+) ", legacy, re.M)
        self.assertEqual(row.groups()[1:3], ("-", "-"))
        # One attempt every 600 s for 30 days, none of them counted.
        self.assertEqual(int(row.group(4)), 30 * 24 * 6 + 1)
        self.assertIn("1 still queued", legacy)

        chart = ET.fromstring(svg)
        self.assertEqual(chart.tag, SVG + "svg")
        text = " ".join(t for t in chart.itertext())
        self.assertIn("enforce", text)
        self.assertIn("legacy", text)
        tooltips = [t.text for t in chart.iter(SVG + "title")]
        self.assertEqual(sum("m1 sales" in (t or "") for t in tooltips), 1, tooltips)

    def test_flapping_postoffice_delivers_in_up_windows_and_bounces_long_outages(self):
        code, out, err, _, _ = simulate(os.path.join(SCENARIOS, "flapping.toml"))
        self.assertEqual(code, 0, err)
        digest = re.search(r"sales: 210 deliveries, (\d+) delivered, (\d+) NDR'd, 0 still queued",
                           out)
        self.assertTrue(digest, out)
        delivered, bounced = map(int, digest.groups())
        self.assertEqual(delivered + bounced, 210)
        self.assertGreater(delivered, bounced)
        # Short outages (the first day) never bounce; the first NDR comes later.
        first_bounce = re.search(r"^  (\d+)d \S+ +m\d+ at sales: bounced", out, re.M)
        self.assertTrue(first_bounce, out)
        self.assertGreaterEqual(int(first_bounce.group(1)), 1)

    def test_a_bad_scenario_is_refused_with_one_line_per_problem(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[scenario]\nduration = "1h"\n[[fault]]\npostoffice = "nowhere"\n'
                    'inject = { mode = "unreachable" }\n')
        self.addCleanup(os.unlink, f.name)
        code, out, err, chart, svg = simulate(f.name)
        self.assertEqual(code, 2)
        self.assertEqual(svg, "")
        self.assertIn(f.name + ": postoffice: at least one [[postoffice]] is required", err)
        code, _, err, _, _ = simulate("/nonexistent/scenario.toml")
        self.assertEqual(code, 2)
        self.assertIn("cannot read", err)


if __name__ == "__main__":
    unittest.main()
