"""`skillmix review`: open the human spot-check web app for a stored run."""

from __future__ import annotations

import os
from pathlib import Path

import click

from skillmix.store import Store, StoreError

# The same default as the other commands' --store (skillmix.cli, which imports this module).
DEFAULT_STORE = "skillmix.sqlite"


@click.command()
@click.argument("run_id", required=False)
@click.option(
    "--store",
    "store_path",
    default=lambda: os.environ.get("SKILLMIX_STORE", DEFAULT_STORE),
    show_default=DEFAULT_STORE,
    help="SQLite run store (env SKILLMIX_STORE).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --token.",
)
@click.option("--port", default=8321, show_default=True, type=int, help="0 picks a free port.")
@click.option(
    "--token",
    envvar="SKILLMIX_REVIEW_TOKEN",
    help="Secret every request must carry (env SKILLMIX_REVIEW_TOKEN).",
)
def review(run_id: str | None, store_path: str, host: str, port: int, token: str | None) -> None:
    """Spot-check a run's grades by hand in the browser (the latest run by default).

    Shows each generation's task, answer and the judges' verdicts, takes a reviewer's
    verdict per criterion (keyboard shortcuts: press ? on the page) and keeps a live
    judge-vs-human agreement table. Verdicts go into the store, so `skillmix report`
    shows the agreement too.
    """
    from skillmix.cli import UserError
    from skillmix.review.server import ReviewError, check_binding, serve

    try:
        check_binding(host, token)
        if not Path(store_path).is_file():
            raise ReviewError(f"no run store at {store_path}; pass --store or run `skillmix run`")
        store = Store(store_path)
        try:
            runs = store.list_runs()
            if run_id is None and not runs:
                raise ReviewError(f"no runs in {store_path}; start one with `skillmix run`")
            run_id = str(store.get_run(run_id)["id"]) if run_id else str(runs[-1]["id"])
        finally:
            store.close()

        def announce(url: str) -> None:
            click.echo(f"reviewing {run_id}: open {url}  (Ctrl+C to stop)")

        serve(store_path, run_id, host=host, port=port, token=token, announce=announce)
    except (ReviewError, StoreError) as err:
        raise UserError(str(err)) from err
