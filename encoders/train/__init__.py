"""Training recipes (they import torch; nothing at search time imports them).

The static code encoder's recipe is ``distill`` (with ``vocab``), its data ``data`` and the
benchmark exclusion list ``exclusions``; ``python -m encoders.train`` runs its steps.
"""
