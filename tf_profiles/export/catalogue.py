"""A large catalogue's embeddings, streamed to .npy files in resumable chunks.

For a million items neither stage fits comfortably in memory as one tensor
([1M, 384] text embeddings are 1.5 GB), and encoding a million texts takes
about an hour on a small CPU. So each stage writes its rows chunk by chunk
into a memory-mapped .npy file and, after every chunk, records how many rows
are done in a small JSON file beside it: a killed run restarts from the last
completed chunk. Chunks are fixed by ``chunk_size`` (also recorded), so a
resumed run computes exactly the batches an uninterrupted one would, and
the file comes out bit for bit the same.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tf_profiles.bundle.inference import item_embeddings
from tf_profiles.errors import UserError


def progress_path(path) -> Path:
    """The progress record kept beside ``path`` (``x.npy`` → ``x.npy.progress.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".progress.json")


def _write_progress(record_path: Path, record: dict):
    # Renamed into place: a kill while writing leaves the previous record.
    temporary = record_path.with_name(record_path.name + ".tmp")
    temporary.write_text(json.dumps(record))
    os.replace(temporary, record_path)


def stream_rows(path, rows: int, width: int, compute: Callable[[int, int], np.ndarray],
                key: str, chunk_size: int = 8192, desc: str = "rows") -> np.ndarray:
    """Fills a [rows, width] float32 .npy file chunk by chunk, resuming a killed run.

    Args:
      path: the .npy file; its progress record is ``progress_path(path)``.
      compute: ``(start, stop)`` → the [stop - start, width] rows.
      key: identifies the inputs; a record written for another key, shape or
        chunk size is not resumed from (the call fails instead).
      chunk_size: rows computed and recorded at a time.

    Returns:
      The finished file, memory-mapped read-only.

    Raises:
      ValueError: the progress record belongs to other inputs, or ``compute``
        returned the wrong shape.
    """
    path = Path(path)
    record_path = progress_path(path)
    record = {"key": key, "rows": int(rows), "width": int(width),
              "chunk_size": int(chunk_size), "done": 0}
    if record_path.is_file() and path.is_file():
        previous = json.loads(record_path.read_text())
        if {k: v for k, v in previous.items() if k != "done"} != {
                k: v for k, v in record.items() if k != "done"}:
            raise UserError(
                f"{record_path}: progress of another computation ({previous}); delete "
                f"{path} and the record to start over, or write elsewhere")
        record["done"] = previous["done"]
        out = np.lib.format.open_memmap(path, mode="r+")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                        shape=(rows, width))
        _write_progress(record_path, record)
    with tqdm(total=rows, initial=record["done"], desc=desc, unit="item",
              disable=record["done"] >= rows) as bar:
        for start in range(record["done"], rows, chunk_size):
            stop = min(start + chunk_size, rows)
            chunk = np.asarray(compute(start, stop), np.float32)
            if chunk.shape != (stop - start, width):
                raise ValueError(f"{path}: rows {start}:{stop} came back with shape "
                                 f"{chunk.shape}, expected {(stop - start, width)}")
            out[start:stop] = chunk
            out.flush()  # the rows are on disk before the record says so
            record["done"] = stop
            _write_progress(record_path, record)
            bar.update(stop - start)
    del out
    return np.load(path, mmap_mode="r")


def _digest(*parts) -> str:
    # Arrays are hashed in place (weights, a memory-mapped file's chunks), not copied.
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part) if isinstance(part, np.ndarray)
                      else str(part).encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def stream_text_embeddings(texts: Sequence[str], encoder, path, chunk_size: int = 8192,
                           batch_size: int = 64) -> np.ndarray:
    """[len(texts), E] frozen-encoder embeddings of ``texts``, streamed into ``path``.

    Within a chunk, texts are encoded in batches sorted by length (each
    batch pads to a similar length, as in :func:`embed_texts`); "" embeds as
    zeros, the towers' "no text".

    Args:
      encoder: a :class:`TextEncoder`.
    """
    encode = tf.function(encoder.call, input_signature=[tf.TensorSpec([None], tf.string)])
    width = encoder.output_dim

    def compute(start, stop):
        chunk = list(texts[start:stop])
        out = np.zeros((len(chunk), width), np.float32)
        order = sorted((i for i, t in enumerate(chunk) if t), key=lambda i: len(chunk[i]))
        for first in range(0, len(order), batch_size):
            rows = order[first:first + batch_size]
            out[rows] = encode(tf.constant([chunk[i] for i in rows])).numpy()
        return out

    key = _digest("text", encoder.max_length, batch_size, *encoder.get_weights(),
                  "\x1f".join(texts))
    return stream_rows(path, len(texts), width, compute, key, chunk_size, "encoding texts")


def stream_item_embeddings(model, item_ids: Sequence[str], text_embeddings: np.ndarray, path,
                           chunk_size: int = 65536) -> np.ndarray:
    """[len(item_ids), D] item-tower embeddings, streamed into ``path``.

    Args:
      model: a trained :class:`TwoTowerModel`.
      text_embeddings: [len(item_ids), E], e.g. the memory-mapped output of
        :func:`stream_text_embeddings`; only one chunk is read at a time.
    """
    width = model.output_dim

    def compute(start, stop):
        # Each chunk's items are a catalogue of their own, so the
        # Preprocessor holds one chunk of text at a time.
        ids = [str(i) for i in item_ids[start:stop]]
        chunk = model.with_preprocessor(model.preprocessor.with_state(
            ids, np.asarray(text_embeddings[start:stop], np.float32)))
        return item_embeddings(chunk, ids, batch_size=stop - start)

    key = _digest("item", *model.item_tower.get_weights(), "\x1f".join(map(str, item_ids)),
                  *(text_embeddings[start:start + chunk_size]
                    for start in range(0, len(text_embeddings), chunk_size)))
    return stream_rows(path, len(item_ids), width, compute, key, chunk_size,
                       "embedding items")

