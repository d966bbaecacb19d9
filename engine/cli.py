"""The `kairos` command: a thin layer over the runtimes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.commands import Check, Commands, discover
from engine.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kairos", description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show its traceback too (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="play generated journeys through the embedded runtime")
    demo.add_argument("--contacts", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--pace", type=float, default=0.01, help="seconds between printed lines")

    run = sub.add_parser("run", help="embedded runtime over a file, stdin, or HTTP")
    run.add_argument("--events", help="JSON lines (.gz ok), or - for stdin")
    run.add_argument("--http", nargs="?", const="127.0.0.1:8080", default=None,
                     metavar="HOST:PORT", help="collect over HTTP instead (default 127.0.0.1:8080)")
    run.add_argument("--out", default="-", help="where actions go as JSON lines (default stdout)")
    run.add_argument("--dead-letters", default=None, help="JSONL file (default <data-dir>/...)")
    run.add_argument("--data-dir", type=Path, default=None, help="RocksDB state directory")
    run.add_argument("--rules", type=Path, default=None, help="rules directory")
    run.add_argument("--clock", choices=["event", "wall"], default="event")
    run.add_argument("--metrics-port", type=int, default=0, help="serve /metrics (0: off)")

    work = sub.add_parser("worker", help="Kafka runtime worker (settings from KAIROS_* env)")
    work.add_argument("--runtime", choices=["batch", "faust"], default=None,
                      help="the batch runtime or Faust agents (default: KAIROS_RUNTIME, batch)")

    console = sub.add_parser("console", help="the web console over a Kafka worker group")
    console.add_argument("action", nargs="?", choices=("serve", "hash-password"),
                         default="serve", help="serve (default), or print a password's hash "
                         "for KAIROS_CONSOLE_USERS")
    console.add_argument("--http", default="127.0.0.1:8090", metavar="HOST:PORT",
                         help="where it listens (default 127.0.0.1:8090)")

    rep = sub.add_parser("replay", help="backtest rules over recorded events, in event time")
    rep.add_argument("--events", required=True, help="JSON lines of any input shape (.gz ok)")
    rep.add_argument("--rules", type=Path, default=None, help="rules directory")
    rep.add_argument("--out", type=Path, default=None, help="actions as JSON lines")
    rep.add_argument("--dead-letters", type=Path, default=None, help="dead letters as JSON lines")
    rep.add_argument("--shadow-out", type=Path, default=None,
                     help="what rules in shadow mode would have done, as JSON lines")
    rep.add_argument("--chart", type=Path, default=None,
                     help="PNG of actions per channel over time, and what the policy held back")
    rep.add_argument("--chart-rule", default=None, metavar="RULE",
                     help="chart this rule only (default: every rule)")
    rep.add_argument("--data-dir", type=Path, default=None,
                     help="keep the final state here (a new directory) for `kairos explain`")
    rep.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="processes, the history split by contact (default: the cores available)")

    gen = sub.add_parser("generate", help="write generated journeys as JSON lines (a history)")
    gen.add_argument("--contacts", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--bad-ratio", type=float, default=0.0)
    gen.add_argument("--realistic", action="store_true",
                     help="people over many days: shared devices, consent withdrawn, no email")
    gen.add_argument("--days", type=int, default=28, help="days of history (with --realistic)")
    gen.add_argument("--out", default="-")

    aud = sub.add_parser("audit", help="check an action file against its history: recipients, "
                         "other people's addresses, withdrawn consent (exit 1 when any)")
    aud.add_argument("--events", required=True, help="the history (JSON lines, .gz ok)")
    aud.add_argument("--actions", required=True, help="the actions decided from it (JSON lines)")

    exp = sub.add_parser("explain", help="a contact's recent decisions and why")
    exp.add_argument("contact", help="contact id, or an identifier such as user:42 or email:a@b.c")
    exp.add_argument("--data-dir", type=Path, default=None,
                     help="an embedded runtime's state (default: <KAIROS_DATA_DIR>/embedded)")
    exp.add_argument("--kafka", action="store_true",
                     help="read the worker group's changelogs on KAIROS_BROKER instead")
    exp.add_argument("--json", action="store_true", help="the whole contact state as JSON")

    contacts = sub.add_parser("contacts", help="a contact's rights: access and erasure")
    contacts.add_argument("action", choices=("show", "forget"),
                          help="show: everything held, as JSON; forget: erase it everywhere")
    contacts.add_argument("contact", help="contact id, or an identifier such as email:a@b.c")
    contacts.add_argument("--data-dir", type=Path, default=None,
                          help="an embedded runtime's state (default: <KAIROS_DATA_DIR>/embedded)")
    contacts.add_argument("--kafka", action="store_true",
                          help="the worker group on KAIROS_BROKER (and its Redis) instead")

    report = sub.add_parser("report", help="measurements over recorded events")
    report_sub = report.add_subparsers(dest="report", required=True)
    up = report_sub.add_parser("uplift", help="treated vs control conversion per rule")
    up.add_argument("--events", required=True, help="recorded events (JSON lines, .gz ok)")
    up.add_argument("--rules", type=Path, default=None)

    rules_cmd = sub.add_parser("rules", help="check, list, deploy, enable or disable rules")
    rules_sub = rules_cmd.add_subparsers(dest="action", required=True)
    for name, text in (("check", "validate and dry-run a rules directory"),
                       ("list", "show the rules of a directory, marking those that fail"),
                       ("deploy", "publish a rules directory to every worker (Kafka)")):
        p = rules_sub.add_parser(name, help=text)
        p.add_argument("directory", nargs="?", type=Path, default=None)
        if name != "deploy":
            p.add_argument("--events", type=Path, default=None, metavar="FILE",
                           help="dry-run on these sample events too (JSON lines, .gz ok)")
    for name in ("enable", "disable"):
        p = rules_sub.add_parser(name, help=f"{name} a rule (edits disabled.txt)")
        p.add_argument("rule_id")
        p.add_argument("--dir", type=Path, default=None, dest="directory")
        p.add_argument("--deploy", action="store_true", help="then publish to the workers")
    for name, text in (("shadow", "try a rule in shadow mode: decided, never delivered"),
                       ("promote", "make a rule in shadow mode live")):
        p = rules_sub.add_parser(name, help=f"{text} (edits modes.txt)")
        p.add_argument("rule_id")
        p.add_argument("--dir", type=Path, default=None, dest="directory")
        p.add_argument("--deploy", action="store_true", help="then publish to the workers")

    from engine.ops.deadletters import add_parser as add_dead_letters

    add_dead_letters(sub)

    commands = Commands(sub)
    discover(commands)  # connectors' `connect`, `collect` and `run --http`, when installed
    given = sys.argv[1:] if argv is None else argv
    debug = "--debug" in given
    given = [a for a in given if a != "--debug"]
    if commands.broken and given and given[0] not in sub.choices and given[0][:1] != "-":
        parser.error(commands.unavailable(f"unknown command {given[0]!r}"))
    args = parser.parse_args(given)
    try:
        return _dispatch(parser, commands, args)
    except Exception as exc:
        if debug:
            raise
        from engine.ops.oneline import one_line

        name = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        print(one_line(name, exc), file=sys.stderr)
        return 1


def _dispatch(parser: argparse.ArgumentParser, commands: Commands,
              args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.command in commands.handlers:
        return commands.handlers[args.command](args, settings)
    if args.command == "demo":
        from engine.ops.demo import run_demo

        return run_demo(args.contacts, args.seed, args.pace)
    if args.command == "run" and args.http:
        if commands.run_over_http is None:
            parser.error(commands.unavailable(
                "run --http needs the HTTP collector of the connectors package, "
                "which is not importable here"))
        data_dir = args.data_dir or settings.data_dir / "embedded"
        return commands.run_over_http(settings, args.http, data_dir,
                                      args.rules or settings.rules_dir)
    if args.command == "run":
        if not args.events:
            parser.error("run needs --events FILE (or - for stdin) or --http")
        from engine.ops.run import run_file

        return run_file(
            args.events,
            out=args.out,
            dead_letters=args.dead_letters,
            data_dir=args.data_dir or settings.data_dir / "embedded",
            rules_dir=args.rules or settings.rules_dir,
            clock=args.clock,
            metrics_port=args.metrics_port,
            policy=settings.load_policy(),
            timer_interval=settings.timer_interval,
        )
    if args.command == "console":
        from engine.console import command

        if args.action == "hash-password":
            return command.hash_password_command()
        return command.run_console(settings, args.http)
    if args.command == "replay":
        return _replay(args, settings)
    if args.command == "generate":
        return _generate(args)
    if args.command == "audit":
        from engine.ops.audit import run as run_audit

        return run_audit(args.events, args.actions)
    if args.command == "rules":
        return _rules(args, settings, commands.checks)
    if args.command == "explain":
        return _explain(args, settings)
    if args.command == "contacts":
        from engine.ops import privacy

        return privacy.run(settings, args.action, args.contact, args.kafka, args.data_dir)
    if args.command == "dead-letters":
        from engine.ops import deadletters

        return deadletters.run(args, settings)
    if args.command == "report":
        from engine.ops.uplift import render, uplift
        from engine.sdk.ruleset import RuleSet

        policy = settings.load_policy()
        rules = RuleSet.load(args.rules or settings.rules_dir)
        print(render(uplift(Path(args.events), rules, policy), policy.conversion_window_days))
        return 0
    if (args.runtime or settings.runtime) == "faust":
        from engine.runtime.faust import run_worker as run_faust_worker

        return run_faust_worker(settings)
    from engine.runtime.kafka.main import run_worker

    return run_worker(settings)


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import ExitStack

    from engine.ops.chart import chart
    from engine.ops.partition import available_cores
    from engine.ops.replay import data_dir_problem, replay
    from engine.sdk.ruleset import RuleSet

    jobs = available_cores() if args.jobs is None else args.jobs
    if jobs < 1:
        print(f"kairos replay: --jobs {jobs}: give at least 1", file=sys.stderr)
        return 2
    if (problem := data_dir_problem(args.data_dir)) is not None:
        print(f"kairos replay: {problem}", file=sys.stderr)
        return 2
    rules = RuleSet.load(args.rules or settings.rules_dir)
    with ExitStack() as files:
        out = files.enter_context(args.out.open("wb")) if args.out else None
        dead = files.enter_context(args.dead_letters.open("wb")) if args.dead_letters else None
        shadow = files.enter_context(args.shadow_out.open("wb")) if args.shadow_out else None
        report = replay(args.events, rules, out, dead, settings.load_policy(), jobs=jobs,
                        shadow_out=shadow, data_dir=args.data_dir)
    print(report.render())
    if args.data_dir is not None:
        print(f"state: {args.data_dir} (kairos explain CONTACT --data-dir {args.data_dir})")
    if args.chart:
        chart(report, args.chart, args.chart_rule)
        print(f"chart: {args.chart}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from engine.ops.generator import JourneyGenerator
    from engine.ops.realistic import RealisticGenerator

    generator = (RealisticGenerator(args.contacts, args.seed, args.bad_ratio, args.days)
                 if args.realistic else
                 JourneyGenerator(args.contacts, seed=args.seed, bad_ratio=args.bad_ratio))
    sink = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    try:
        for g in generator:
            sink.write(g.value + b"\n")
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()
    return 0


def _rules(args: argparse.Namespace, settings: Settings, checks: list[Check]) -> int:
    import asyncio
    import logging

    from engine.ops.rules_check import check
    from engine.runtime import rule_updates as rule_deploy
    from engine.sdk.rule import Mode
    from engine.sdk.ruleset import DISABLED_FILE, MODES_FILE, set_disabled, set_mode

    action, directory = args.action, args.directory or settings.rules_dir
    if action in ("enable", "disable", "shadow", "promote"):
        if action in ("enable", "disable"):
            known = set_disabled(directory, args.rule_id, action == "disable")
            now, edited = f"{action}d", DISABLED_FILE
        else:
            mode: Mode = "shadow" if action == "shadow" else "live"
            known, now, edited = set_mode(directory, args.rule_id, mode), mode, MODES_FILE
        if not known:
            print(f"kairos rules {action}: no rule {args.rule_id!r} in {directory}; "
                  f"`kairos rules list {directory}` shows its rules", file=sys.stderr)
            return 1
        print(f"{args.rule_id}: {now} in {directory / edited}")
        if not args.deploy:
            return 0
        action = "deploy"
    if action == "list":
        return _list(directory, settings, checks, args.events)
    checked = check(directory, settings.templates_dir, getattr(args, "events", None))
    rules, problems = checked.rules, checked.problems
    if rules is not None:
        problems += [p for extra in checks for p in extra(directory, settings)]
    for warning in checked.warnings:
        print(f"kairos rules {action}: warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"kairos rules {action}: {problem}", file=sys.stderr)
    if rules is None or problems:
        return 1
    if action == "check":
        print(f"ok: {len(rules)} rules in {directory}: {rules.describe()}")
        return 0
    bundle = rule_deploy.make_bundle(directory, settings.templates_dir)
    # a one-shot client: a broker it cannot reach is this command's one-line error, not a log
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(rule_deploy.ensure_rules_topic(
        settings.bootstrap, settings.topic_rules, settings.replication_factor,
        settings.broker_timeout))
    asyncio.run(rule_deploy.publish(settings.bootstrap, settings.topic_rules, bundle))
    print(f"deployed bundle {bundle.digest} to {settings.topic_rules}: {rules.describe()}")
    return 0


def _list(directory: Path, settings: Settings, checks: list[Check], events: Path | None) -> int:
    """Every rule of every file that loads, those that fail a check marked `FAILING` (the
    reasons on stderr), and each file that does not load; exit 1 when anything fails."""
    from engine.ops.rules_check import check_loaded
    from engine.sdk.ruleset import RuleSet, load_each, read_disabled, read_modes

    found, broken = load_each(directory)
    rules = RuleSet(found, read_disabled(directory), read_modes(directory))
    problems = [str(b) for b in broken] + check_loaded(
        rules, directory, settings.templates_dir, events).problems
    if not broken:
        problems += [p for extra in checks for p in extra(directory, settings)]
    for problem in problems:
        print(f"kairos rules list: {problem}", file=sys.stderr)
    for r in rules.rules.values():
        triggers = ", ".join(map(str, r.triggers))
        failing = any(f"rule {r.id!r}" in p for p in problems)
        state = "FAILING" if failing else "disabled" if r.id in rules.disabled else "enabled"
        print(f"{r.id:<36} v{r.version:<3} {state:<9} {r.mode:<7} {r.source:<22} "
              f"[{triggers}]")
        if r.description:
            print(f"{'':59}{r.description}")
    for b in broken:
        print(f"{str(b).split(':')[0]:<36} {'':<4} {'FAILING':<9} does not load")
    return 1 if problems else 0


def _explain(args: argparse.Namespace, settings: Settings) -> int:
    from engine.ops import explain

    if args.kafka:
        identity, contacts = explain.from_changelogs(settings.bootstrap, settings.app_id)
        state = explain.resolve(args.contact, identity, contacts)
    else:
        identity, contacts, close = explain.from_directory(
            args.data_dir or settings.data_dir / "embedded")
        try:
            state = explain.resolve(args.contact, identity, contacts)
        finally:
            close()
    if state is None:
        print(f"kairos explain: no contact {args.contact!r}; give a contact id or an identifier "
              "such as user:42 or email:a@b.c", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.buffer.write(explain.as_json(state) + b"\n")
    else:
        print(explain.render(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
