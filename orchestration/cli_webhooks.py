"""`outflow webhooks serve | drain | status`: consent events flowing back from the tools."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
from pathlib import Path

from orchestration import settings
from orchestration.cli_sync import UsageError, serve_until_stopped


def add_webhook_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("webhooks", help="receive unsubscribes, bounces and spam reports from the tools")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=type(p))

    serve = verbs.add_parser("serve", help="run the HTTP receiver (events are spooled; drain loads them)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", default="8780", help="port (default 8780; 0 = any free port)")
    serve.add_argument("--only", help="comma-separated tools to serve (default: every tool in the config)")
    serve.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    serve.add_argument("--config", help="webhooks file (default: $OUTFLOW_WEBHOOKS or webhooks.yml)")
    serve.set_defaults(run=run_serve)

    drain = verbs.add_parser("drain", help="load spooled events into raw.consent_events (idempotent)")
    drain.add_argument("--config", help="webhooks file (default: $OUTFLOW_WEBHOOKS or webhooks.yml)")
    drain.add_argument("--warehouse", help="DuckDB file (default: $OUTFLOW_WAREHOUSE or warehouse/outflow.duckdb)")
    drain.add_argument("--json", action="store_true", help="print the result as JSON")
    drain.set_defaults(run=run_drain)


def _config(args: argparse.Namespace):
    from orchestration.webhooks.config import ConfigError, load_config, spool_dir

    try:
        config, where = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return config, where, spool_dir(config, where)


def run_serve(args: argparse.Namespace) -> int:
    from orchestration.webhooks.config import ConfigError
    from orchestration.webhooks.receiver import WebhookReceiver, build_tools
    from orchestration.webhooks.spool import Spool

    try:
        port = int(args.port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise UsageError(f"--port must be an integer 0-65535, got {args.port}") from None
    config, where, folder = _config(args)
    try:
        tools = build_tools(config, where, os.environ, args.only.split(",") if args.only else None)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    receiver = WebhookReceiver(tools, Spool(folder), max_body_bytes=config.max_body_bytes, host=args.host, port=port)
    try:
        url = receiver.start()
    except OSError as exc:
        raise UsageError(f"could not bind {args.host}:{port} ({exc.strerror})") from None
    for name in tools:
        path = "/webhooks/mailchimp/<token>" if name == "mailchimp" else f"/webhooks/{name}"
        print(f"{name}: POST {url}{path}", flush=True)
    print(f"spool: {folder}", flush=True)
    # SIGTERM (a service manager stopping us) ends the loop like Ctrl-C: counters printed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve_until_stopped(args.seconds)
    finally:
        receiver.stop()
        print(json.dumps(receiver.counters(), sort_keys=True), flush=True)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_drain(args: argparse.Namespace) -> int:
    from orchestration.webhooks.drain import drain
    from orchestration.webhooks.spool import Spool

    _, _, folder = _config(args)
    warehouse = Path(args.warehouse).expanduser().resolve() if args.warehouse else settings.warehouse_path()
    result = drain(Spool(folder), warehouse)
    if args.json:
        print(json.dumps(result.as_metadata(), sort_keys=True))
    else:
        print(f"drained {result.batches} batch(es): {result.events} event(s), {result.inserted} new, "
              f"{result.duplicates} already loaded, {result.unreadable_lines} unreadable line(s)")
    return 0
