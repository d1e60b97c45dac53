"""The original Skill-Mix scripts' recorded runs: read their files, import them, compare.

`import_reference` turns their output folders into skillmix runs (our parser, our
aggregation); `reference_diff` says where their points and ours disagree.
"""

from skillmix.reference.formats import ReferenceFormatError
from skillmix.reference.importer import PROTOCOL, ImportedRun, ImportSummary, import_reference
from skillmix.scoring.reference import CAUSES, ReferenceDiff, reference_diff

__all__ = [
    "CAUSES",
    "PROTOCOL",
    "ImportSummary",
    "ImportedRun",
    "ReferenceDiff",
    "ReferenceFormatError",
    "import_reference",
    "reference_diff",
]
