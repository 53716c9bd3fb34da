"""The update workflow: new events → refreshed profiles → (fine-tune) → a served version.

``tf-profiles update`` runs :func:`update`; each step is the library's own
(ingest, refresh, finetune, export), so this module only orders them and
decides which model is published.
"""
import dataclasses
from pathlib import Path
from typing import Optional

from tf_profiles.export.versions import export_model
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.refresh import RefreshReport, refresh_profiles
from tf_profiles.store.ingest import IngestReport, ingest
from tf_profiles.store.store import ProfileStore
from tf_profiles.training.finetune import FinetuneReport, finetune
from tf_profiles.workflows.export_store import refresh_and_export


@dataclasses.dataclass(frozen=True)
class Finetuning:
    """A warm-start fine-tune into ``output``, published only if its NDCG@10
    on the guard slice (the latest new events, not trained on) falls by at
    most ``max_ndcg_drop`` below the previous model's."""
    output: Path
    epochs: int
    learning_rate: float
    max_ndcg_drop: float


@dataclasses.dataclass
class UpdateReport:
    """What each step did; ``finetune`` and ``version`` are None for a step not asked for.

    Attributes:
      published_model: the model folder the new version (if any) was exported from.
    """
    ingest: IngestReport
    refresh: RefreshReport
    finetune: Optional[FinetuneReport]
    published_model: Path
    version: Optional[Path]

    @property
    def refused(self) -> bool:
        """A fine-tune was asked for and its model kept back."""
        return self.finetune is not None and not self.finetune.accepted


def update(store: ProfileStore, events, model, half_life_days: Optional[float] = None,
           items=None, users=None, batch_size: int = 10_000, show_rejected: int = 20,
           refresh_batch_size: int = 2048, cache_dir=None, export_base=None, k: int = 100,
           finetuning: Optional[Finetuning] = None, log=print) -> UpdateReport:
    """Ingests ``events`` (after ``items`` and ``users``), refreshes the stale
    profiles with ``model``, optionally fine-tunes, and exports a new version
    into ``export_base`` (if given) with the store's profiles.

    A refused fine-tune publishes ``model`` with the refreshed profiles, so
    new events reach serving either way.

    Args:
      show_rejected: how many rejected event rows are logged.
      log: where each step's summary goes.

    Raises:
      DataError: an input file is missing, unreadable or lacks a column.
      ValueError: the model folder or the fine-tune output is not usable.
    """
    ingested = ingest(store, events, items, users, batch_size=batch_size)
    for line in ingested.lines(events, show_rejected):
        log(line)
    builder = ProfileBuilder.from_model_dir(model, store, half_life_days=half_life_days,
                                            cache_dir=cache_dir)
    refreshed = refresh_profiles(store, builder, refresh_batch_size)
    log(refreshed.summary())
    tuned, published = None, Path(model)
    if finetuning is not None:
        tuned = finetune(model, store.events(), finetuning.output, epochs=finetuning.epochs,
                         learning_rate=finetuning.learning_rate,
                         max_ndcg_drop=finetuning.max_ndcg_drop, log=log)
        if tuned.accepted:
            published = Path(finetuning.output)
    version = None
    if export_base and published == Path(model):
        version = export_model(published, export_base, k=k, store=store, log=log,
                               builder=builder)
    elif export_base:  # the fine-tuned model embeds everyone anew
        version = refresh_and_export(published, export_base, store, half_life_days, cache_dir,
                                     refresh_batch_size, log=log, k=k)
    return UpdateReport(ingested, refreshed, tuned, published, version)
