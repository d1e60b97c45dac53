"""`skillmix math`: skills for reasoning on math data sets, one module per command family."""

from __future__ import annotations

import click

from skillmix.cli.math import evaluate, generate, html, label, square_law, stat


@click.group("math")
def math_group() -> None:
    """Skills for reasoning on math data.

    label the skills questions need and evaluate students with them (label, eval); find
    the skills a student misses and make training data for them (profile, data); write
    new questions that need two skills at once, review and export them (generate, review,
    export), and test the square law (square-law); html pages of any of these runs.
    """


for command in (
    label.label,
    evaluate.evaluate,
    stat.profile,
    stat.data,
    generate.generate,
    generate.export_generated,
    square_law.square_law,
    html.html,
):
    math_group.add_command(command)
