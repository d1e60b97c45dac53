"""`skillmix review`: open the human spot-check web app for a stored run."""

from __future__ import annotations

import os
from pathlib import Path

import click

from skillmix.cli._common import store_option

# Also skillmix.review.security.TOKEN_ENV; that package loads aiohttp, so not for --help.
TOKEN_ENV = "SKILLMIX_REVIEW_TOKEN"


@click.command()
@click.argument("run_id", required=False)
@store_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 for every interface).",
)
@click.option("--port", default=8321, show_default=True, type=int, help="0 picks a free port.")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File holding the token every request must carry (or set {TOKEN_ENV}). "
    "Without either, a new random token is made and shown once in the URL.",
)
@click.option("--token", "token_argument", hidden=True)  # refused: see review()
def review(
    run_id: str | None,
    store_path: str,
    host: str,
    port: int,
    token_file: Path | None,
    token_argument: str | None,
) -> None:
    """Spot-check a run's grades by hand in the browser (the latest run by default).

    Shows each generation's task, answer and the judges' verdicts, takes a reviewer's
    verdict per criterion (keyboard shortcuts: press ? on the page) and keeps a live
    judge-vs-human agreement table. Verdicts go into the store, so `skillmix report`
    shows the agreement too.

    Given a `skillmix math generate` run, it opens the verification queue of the
    generated questions that survived the filters instead: accept, edit (question,
    solution, answer) or reject each one; `skillmix math export RUN` writes the accepted.

    Given a `skillmix image run`, it shows a sample of its images (seeded, stratified by
    k) with the judge's yes/no questions and takes the reviewer's answers, without
    showing the judge's; `skillmix image report` and `image html` then show
    judge-vs-human agreement.

    Every request needs a token of at least 22 random characters. It comes from
    --token-file or the SKILLMIX_REVIEW_TOKEN environment variable, or is made afresh
    and printed once in the URL to open. There is no --token option: other users of
    the machine can read command lines in `ps`.
    """
    from skillmix.review.server import ReviewError, check_binding, generate_token, serve
    from skillmix.store import EVALUATION, Store

    if token_argument is not None:
        raise click.UsageError(
            f"--token would show the secret to every user of this machine in `ps`; "
            f"set {TOKEN_ENV} or pass --token-file instead"
        )
    given = review_token(token_file)
    token = generate_token() if given is None else given
    check_binding(host, token)
    from skillmix.store.backend import is_postgres

    if not is_postgres(store_path) and not Path(store_path).is_file():
        raise ReviewError(f"no run store at {store_path}; pass --store or run `skillmix run`")
    store = Store(store_path)
    try:
        runs = store.list_runs(EVALUATION)
        if run_id is None and not runs:
            raise ReviewError(f"no runs in {store_path}; start one with `skillmix run`")
        run_id = str(store.get_run(run_id)["id"]) if run_id else str(runs[-1]["id"])
    finally:
        store.close()

    def announce(url: str) -> None:
        click.echo(f"reviewing {run_id}: open {url}  (Ctrl+C to stop)")

    serve(store_path, run_id, host=host, port=port, token=token, announce=announce)


def review_token(token_file: Path | None) -> str | None:
    """The token from --token-file (its first line) or the environment; None for neither.

    Raises ReviewError when the file cannot be read; the token itself is checked later.
    """
    from skillmix.review.server import ReviewError

    if token_file is not None:
        try:
            lines = token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ReviewError(f"cannot read the token from {token_file}: {err}") from err
        return lines[0].strip() if lines else ""
    return os.environ.get(TOKEN_ENV) or None
