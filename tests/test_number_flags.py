"""Every whole-number flag of hyperctl and hyperexport (direct mode too) takes ASCII digits only,
within the bounds the API enforces for the same value: anything else is a usage error (exit 2)
naming the range, before a backend, a database or a vCenter is touched."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from cli.management.commands import hyperctl, hyperexport
from exports.pipeline.options import ExportOptions, InvalidOptions

VM = ["-vm", "/dc/vm/prod/web01"]
CREATE = ["schedules", "create", "nightly", "@daily", *VM]


def parse(command, args: list[str]):
    cmd = command.Command()
    cmd._called_from_command_line = True  # argparse's own exit 2, as from a shell
    return cmd.create_parser(command.__name__.rsplit(".", 1)[-1], "x").parse_args(args)


def usage_error(command, args: list[str], capsys) -> str:
    """The one line a usage error prints (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        parse(command, args)
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    return line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "-tail", "9223372036854775808", "JOB"], "invalid tail '9223372036854775808': a whole number from 0 to 1000000"),
        (["logs", "-tail", "\u0663", "JOB"], "invalid tail '\u0663': a whole number from 0 to 1000000"),
        (["logs", "-tail", "-1", "JOB"], "invalid tail '-1': a whole number from 0 to 1000000"),
        (["query", "-limit", "+5"], "invalid limit '+5': a whole number from 0 to 1000000"),
        (["query", "-limit", "1_000"], "invalid limit '1_000': a whole number from 0 to 1000000"),
        ([*CREATE, "-parallel", "\u0663"], "invalid parallel '\u0663': a whole number from 1 to 32"),
        ([*CREATE, "-parallel", "33"], "invalid parallel '33': a whole number from 1 to 32"),
        ([*CREATE, "-retention", "100001"], "invalid retention '100001': a whole number from 1 to 100000"),
        ([*CREATE, "-retention", "0"], "invalid retention '0': a whole number from 1 to 100000"),
        (["schedules", "list", "-page", "1000001"], "invalid page '1000001': a whole number from 1 to 1000000"),
        (["webhooks", "list", "-page", " 2"], "invalid page ' 2': a whole number from 1 to 1000000"),
        ([*CREATE, "-conversion-timeout", "99999999999999999999h"], "invalid duration '99999999999999999999h': at most 10080 minutes"),
        ([*CREATE, "-conversion-timeout", "\u0663m"], "invalid duration '\u0663m': use minutes (120) or 2h, 90m, 45s"),
    ],
)  # fmt: skip
def test_hyperctl_refuses_a_number_flag_out_of_bounds_or_not_ascii_digits(args, message, capsys):
    assert usage_error(hyperctl, args, capsys).endswith(message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-parallel", "99999999999999999999"], "invalid parallel '99999999999999999999': a whole number from 1 to 32"),
        (["-parallel", "\u0663"], "invalid parallel '\u0663': a whole number from 1 to 32"),
        (["-parallel", "0"], "invalid parallel '0': a whole number from 1 to 32"),
        (["-conversion-timeout", "99999999999999999999h"], "invalid duration '99999999999999999999h': at most 10080 minutes"),
        (["-conversion-timeout", "9" * 5000], "invalid duration '999999999999999999999999...': use minutes (120) or 2h, 90m, 45s"),
        (["--use-daemon", "-parallel", "64"], "invalid parallel '64': a whole number from 1 to 32"),
    ],
)  # fmt: skip
def test_hyperexport_refuses_a_number_flag_out_of_bounds_or_not_ascii_digits(args, message, capsys):
    assert usage_error(hyperexport, [*VM, *args], capsys).endswith(message)


def test_number_flags_within_bounds_are_read_as_numbers():
    opts = parse(
        hyperctl, [*CREATE, "-parallel", "032", "-retention", "100000", "-conversion-timeout", "168h"]
    )
    assert (opts.parallel, opts.retention, opts.conversion_timeout) == (32, 100000, "168h")
    assert parse(hyperctl, ["logs", "-tail", "0", "JOB"]).tail == 0
    assert parse(hyperexport, [*VM, "-parallel", "1"]).parallel == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"parallel": 33}, "-parallel must be from 1 to 32"),
        ({"parallel": 0}, "-parallel must be from 1 to 32"),
        ({"conversion_timeout": 7 * 24 * 3600 + 1}, "-conversion-timeout must be more than zero and at most 10080 minutes"),
    ],
)  # fmt: skip
def test_a_direct_export_keeps_the_bounds_of_the_apis_job_spec(options, message):
    with pytest.raises(InvalidOptions, match=message):
        ExportOptions(vm_path="/dc/vm/prod/web01", **options).validate()
    ExportOptions(vm_path="/dc/vm/prod/web01", parallel=32, conversion_timeout=7 * 24 * 3600).validate()


@pytest.mark.parametrize("days", ["99999999999", "-1", "\u0663"])
def test_purge_jobs_refuses_days_out_of_bounds_or_not_ascii_digits(days):
    with pytest.raises(CommandError, match=f"invalid days '{days}': a whole number from 0 to 36500"):
        call_command("purge_jobs", "--older-than", days)
