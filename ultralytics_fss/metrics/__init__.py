"""Metrics both wings of the package score with: `evidence/` (comparisons, `evaluate`) and `large_images/` (full
images merged back from tiles). Nothing of ours is imported here."""
