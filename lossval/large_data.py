"""Settings for valuing large tables in bounded time: larger training batches, fewer epochs.

The paper's settings (batch 32, 30 epochs) cost about 30 x N / 32 network
steps: over two minutes of LossVal per 50,000 rows with a 1000-row validation
set, about 15 minutes of plain training alone at 10^6 rows on two CPU cores.
:func:`large_data_settings` keeps the paper's settings below :data:`LARGE_FROM`
rows and from there on returns (measured on the development datasets against
the paper's settings: "17: size-aware defaults" in docs/benchmarks.md):

- ``batch_size``: the power of two nearest ``N / 1000`` (about 1000 network
  steps per epoch), at most :data:`MAX_BATCH`;
- ``epochs``: :data:`LARGE_EPOCHS`;
- ``ot_batch_size``: the OT term keeps the paper's 32-row problems inside
  the larger batches (see :class:`lossval.LossVal`), so its cost per row and
  its statistics do not change with the batch size;
- ``reference_rows``: each OT problem meets a random part of at most
  :data:`REFERENCE_ROWS` validation rows, so a 1000-row validation set
  costs what a 128-row one does (at some F1 cost, measured);
- ``weight_lr``: the default step of the weights scaled by 30 / epochs, so
  the weights can travel as far in the fewer epochs as in the paper's 30
  (each weight takes one step per epoch in either schedule);
- ``scaling``: :data:`LARGE_SCALING`, geomloss's epsilon-scaling ratio, so each
  Sinkhorn solve takes about 60 % of the iterations of the default 0.5;
- ``sinkhorn_loop``: :data:`LARGE_LOOP`, each solve starts from the mean costs and
  leaves out the schedule's repeated temperatures: half the soft-mins (:mod:`lossval.ot`).

``ot_every`` (the OT term solved every k-th epoch and held in between) is not
in the table: it brings LossVal to about 1.5x plain training at 10^6 rows but
cost F1 on a development dataset ("17: overhead levers" in docs/benchmarks.md).

``batch_size`` and ``epochs`` are the network's training settings: give the
same ones to the plain :class:`lossval.MLP` it is compared with.
docs/benchmarks.md, section 3, has the measurements behind these numbers.
"""

from __future__ import annotations

import math
from typing import Any

from lossval._checks import check_int
from lossval.settings import NORMALIZED_WEIGHT_LR, PAPER_BATCH, PAPER_EPOCHS

#: Tables with at least this many rows get the large-data settings.
LARGE_FROM = 50_000
#: Largest training batch the settings choose.
MAX_BATCH = 1024
#: Epochs for large tables (5 cost .04-.10 F1 on california_housing at 5 x 10^4 rows; 10: within .03).
LARGE_EPOCHS = 10
#: Validation rows each OT problem meets (``reference_rows``): a random part of a larger validation set.
REFERENCE_ROWS = 128
#: Epsilon-scaling ratio of the Sinkhorn solver on large tables (geomloss's default: 0.5).
LARGE_SCALING = 0.2
#: The Sinkhorn loop on large tables (:data:`lossval.ot.LOOPS`; small tables: geomloss's own).
LARGE_LOOP = "trimmed"


def large_data_settings(n_rows: int) -> dict[str, Any]:
    """Keyword arguments for :class:`lossval.LossVal` at ``n_rows`` training rows.

    Always holds ``batch_size`` and ``epochs`` (below :data:`LARGE_FROM` rows the
    defaults of :class:`lossval.LossVal`, the paper's); above it also the LossVal-only
    ``ot_batch_size``, ``reference_rows``, ``weight_lr``, ``scaling`` and ``sinkhorn_loop``. Example::

        settings = large_data_settings(len(X_train))
        LossVal(task, **settings).fit(X_train, y_train, X_val, y_val)
        MLP(task, batch_size=settings["batch_size"], epochs=settings["epochs"])  # its plain baseline
    """
    n_rows = check_int("n_rows", n_rows)
    paper_batch, paper_epochs = PAPER_BATCH, PAPER_EPOCHS
    if n_rows < LARGE_FROM:
        return {"batch_size": paper_batch, "epochs": paper_epochs}
    batch = min(MAX_BATCH, max(paper_batch, 2 ** round(math.log2(n_rows / 1000))))
    return {
        "batch_size": batch,
        "epochs": LARGE_EPOCHS,
        "ot_batch_size": paper_batch,  # OT problems keep the paper's batch size
        "reference_rows": REFERENCE_ROWS,
        "weight_lr": NORMALIZED_WEIGHT_LR * paper_epochs / LARGE_EPOCHS,  # as far in fewer epochs
        "scaling": LARGE_SCALING,  # fewer Sinkhorn iterations per solve
        "sinkhorn_loop": LARGE_LOOP,  # and half the soft-mins: no repeated temperatures
    }
