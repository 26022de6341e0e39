"""End-to-end tests of `postconn check-config` and `postconn config` on the
real binary: problems and warnings with their lines, "did you mean" for a
misspelt key, and the config printed with every key (--effective) or only
those not at their default (-n), each of which the binary reads back."""
import os
import re
import unittest

from postconn_process import run, temp_workdir


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


MAILDIR_AND_SMTP = """\
[server]
hostname = "connector.example.test"

[[postoffice]]
name = "sales"
domains = ["sales.example.test"]
transport = "maildir"
path = "shares/sales"

[[postoffice]]
name = "archive"
domains = ["archive.example.test"]
transport = "maildir"
path = "shares/archive"

[[postoffice]]
name = "relay"
domains = ["relay.example.test"]
transport = "smtp"
address = "127.0.0.1:25"
"""


def postoffice_block(text, name):
    """The lines of the [[postoffice]] named `name` in a printed config."""
    start = text.index('name = "%s"' % name)
    end = text.find("[[postoffice]]", start)
    return text[start:] if end < 0 else text[start:end]


class CheckConfig(unittest.TestCase):
    def test_warnings_name_file_line_and_key_and_do_not_fail(self):
        with temp_workdir() as d:
            os.makedirs(os.path.join(d, "shares", "archive"))  # no marker: not mounted
            config = write(d, "postconn.toml", MAILDIR_AND_SMTP)
            code, out, err = run("check-config", "postconn.toml", cwd=d)
            self.assertEqual(code, 0, err)
            self.assertEqual(out, "postconn.toml: ok (3 postoffices), 2 warnings\n")
            self.assertEqual(err.splitlines(), [
                'postconn.toml:8: warning: postoffice[0].path: "shares/sales" does not '
                'exist; the server probes postoffice "sales" as down',
                'postconn.toml:14: warning: postoffice[1].path: "shares/archive" holds no '
                '.postoffice marker (a share not mounted?); the server probes postoffice '
                '"archive" as down',
            ])
            # Mounted, marker and all: no warning is left.
            for share in ("sales", "archive"):
                os.makedirs(os.path.join(d, "shares", share), exist_ok=True)
                open(os.path.join(d, "shares", share, ".postoffice"), "w").close()
            code, out, err = run("check-config", config, cwd=d)
            self.assertEqual((code, err), (0, ""))
            self.assertEqual(out, config + ": ok (3 postoffices)\n")

    def test_problems_have_lines_and_a_misspelt_key_gets_a_suggestion(self):
        with temp_workdir() as d:
            config = write(d, "bad.toml", MAILDIR_AND_SMTP.replace(
                'transport = "smtp"', 'transprot = "smtp"').replace(
                '[server]\n', '[server]\nhostnme = "x"\n'))
            code, out, err = run("check-config", config)
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertIn(config + ':2: server.hostnme: unknown key (did you mean "hostname"?)',
                      lines)
        self.assertIn(config + ':20: postoffice[2].transprot: unknown key '
                      '(did you mean "transport"?)', lines)
        # The key that is missing: the line of the table that lacks it.
        self.assertIn(config + ':17: postoffice[2].transport: missing (maildir, smtp or lmtp)',
                      lines)

    def test_a_syntax_error_names_the_file_once(self):
        with temp_workdir() as d:
            config = write(d, "broken.toml", '[server]\nhostname = "mx\n')
            code, _, err = run("check-config", config)
        self.assertEqual(code, 1)
        self.assertRegex(err, r"^%s:2:\d+: [^\n]+\n$" % re.escape(config))


class PrintConfig(unittest.TestCase):
    def test_effective_config_has_every_key_and_the_smtp_retry_defaults(self):
        with temp_workdir() as d:
            config = write(d, "postconn.toml", MAILDIR_AND_SMTP)
            code, out, err = run("config", "--effective", config)
            self.assertEqual((code, err), (0, ""))
            for line in ('hostname = "connector.example.test"', 'listen = "127.0.0.1:2525"',
                         "max_open_retries = 144", 'transfer_interval = "2m"',
                         'max_lifetime = "5d"', 'probe_timeout = "10s"'):
                self.assertIn(line + "\n", out)
            relay = postoffice_block(out, "relay")
            self.assertIn('  [postoffice.retry]\n  max_transfer_retries = 120\n'
                          '  transfer_interval = "5m"\n  max_transfer_interval = "4000s"\n',
                          relay)
            self.assertNotIn("[postoffice.retry]", postoffice_block(out, "sales"))
            # The same without --effective, and what it printed is a config
            # that prints the same again.
            self.assertEqual(run("config", config), (0, out, ""))
            again = write(d, "effective.toml", out)
            self.assertEqual(run("config", "--effective", again), (0, out, ""))

    def test_non_default_keys_only_and_they_mean_the_same_config(self):
        with temp_workdir() as d:
            # Every key of this config is needed or not at its default.
            text = MAILDIR_AND_SMTP + """
  [postoffice.retry]
  max_transfer_retries = 30
"""
            config = write(d, "postconn.toml", text)
            code, out, err = run("config", "-n", config)
            self.assertEqual((code, err), (0, ""))
            self.assertEqual(
                out, "# postconn config: the keys whose value is not the default.\n\n" + text)
            short = write(d, "short.toml", out)
            self.assertEqual(run("config", short)[1], run("config", config)[1])

    def test_an_invalid_config_prints_its_problems_and_no_config(self):
        with temp_workdir() as d:
            config = write(d, "bad.toml", "[smtp]\nlistn = 1\n")
            code, out, err = run("config", "-n", config)
            self.assertEqual((code, out), (1, ""))
            self.assertIn(config + ':2: smtp.listn: unknown key (did you mean "listen"?)',
                          err.splitlines())
            code, out, err = run("config", "--effective", "-n", config)
            self.assertEqual((code, out), (2, ""))
            self.assertIn("excludes", err)


if __name__ == "__main__":
    unittest.main()
